package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/hsmshare"
)

type initResult struct {
	PeerID            string `json:"peer_id"`
	IdentityPublicKey string `json:"identity_public_key"`
	// SealKey and IdentityKey describe the site's keys in the token.
	SealKey     hsmKeyInfo `json:"seal_key"`
	IdentityKey hsmKeyInfo `json:"identity_key"`
	// PreParamsReady is how many pre-parameter sets the site holds.
	PreParamsReady int `json:"preparams_ready"`
	// FixturesImported counts the test fixture sets imported by this run.
	FixturesImported int `json:"fixtures_imported,omitempty"`
}

// hsmKeyInfo is one of the site's keys in the token, as init reports it.
type hsmKeyInfo struct {
	Label string `json:"label"`
	// ID is the key's CKA_ID in hex.
	ID string `json:"id"`
	// Scheme is how new blobs are sealed (seal key only).
	Scheme string `json:"scheme,omitempty"`
	// Created is true when this init generated the key.
	Created bool `json:"created"`
	// Local is the token's CKA_LOCAL, whether it says it generated the
	// key. It is informative only: NSS softoken says false for keys it
	// generated; CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE, which
	// every key must have, are what show it never left the token.
	Local bool `json:"local"`
}

func cmdInit(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("init", "kqnode init --home DIR --module PATH [--module-init-args ARGS] --token LABEL --pin-source file:PATH|env:VAR [--token-serial SERIAL] [--allow-no-token-rng] [--admin-key KEY.pub [--admin-name NAME] [--admin-roles admin,...]] [--preparams-fixtures PATH,...] [--json]")
	homeDir := fs.String("home", "", "site home directory to create (required)")
	module := fs.String("module", "", "PKCS#11 module path, e.g. /usr/lib/softhsm/libsofthsm2.so (required)")
	initArgs := fs.String("module-init-args", "", "initialization arguments the module needs (CK_C_INITIALIZE_ARGS.pReserved), kept in config.json; NSS softoken: \"configdir='sql:DIR' certPrefix='' keyPrefix='' secmod='secmod.db' dbTokenDescription='LABEL' flags=\"")
	token := fs.String("token", "", "token label (required)")
	serial := fs.String("token-serial", "", "token serial, when several tokens share the label")
	pinSource := fs.String("pin-source", "", "where the user PIN is read at every start: file:PATH (mode 0600) or env:VAR (required)")
	allowNoRNG := fs.Bool("allow-no-token-rng", false, "let the site run with the operating system's random generator alone when the token has none (CKF_RNG unset); without it such a token is refused (code no_token_rng). Kept in config.json; run init again without it to take it back")
	fixtures := fs.String("preparams-fixtures", "", "TEST ONLY: import Paillier pre-parameter fixtures (files or directories of *.json, comma-separated) so keygen needs no safe primes; their secrets are public, keys made with them must never hold value")
	adminKey := fs.String("admin-key", "", "SSH public key file (KEY.pub) of the site's first admin operator, registered in operators.json; on an existing home, adds it or sets its roles (the way back in when no admin is left; the site must be stopped)")
	adminName := fs.String("admin-name", "admin", "with --admin-key: the operator's name")
	adminRoles := fs.String("admin-roles", roleAdmin, "with --admin-key: the operator's roles, comma-separated (requester, approver, admin, auditor); admin is required")
	fs.Bool("json", true, "print the result as one JSON object (always on for init)")
	if err := fs.parse(args, stdout); err != nil {
		return err
	}
	if *homeDir == "" || *module == "" || *token == "" || *pinSource == "" {
		return usageErrorf("init: --home, --module, --token and --pin-source are required\nusage: %s", fs.synopsis)
	}
	pin := *pinSource
	if p, ok := strings.CutPrefix(pin, "file:"); ok {
		abs, err := filepath.Abs(p)
		if err != nil {
			return usageErrorf("init: --pin-source %q: %v", pin, err)
		}
		pin = "file:" + abs
	} else if !strings.HasPrefix(pin, "env:") {
		return usageErrorf("init: --pin-source must be file:PATH or env:VAR")
	}
	fixtureFiles, err := fixturePaths(*fixtures)
	if err != nil {
		return usageErrorf("init: --preparams-fixtures: %v", err)
	}
	var admin *operator
	if *adminKey != "" {
		b, err := os.ReadFile(*adminKey)
		if err != nil {
			return usageErrorf("init: --admin-key: %v", err)
		}
		admin = &operator{Name: *adminName, Key: strings.TrimSpace(string(b)), Roles: splitList(*adminRoles)}
		if err := checkOperator(admin); err != nil {
			return usageErrorf("init: --admin-key %s: %v", *adminKey, err)
		}
		if !slices.Contains(admin.Roles, roleAdmin) {
			return usageErrorf("init: --admin-roles %q: the first operator must have role admin", *adminRoles)
		}
	}

	// What init is about to trust, or write into, must be closed to other
	// users (see trust.go): the home (or, for a new one, the directories
	// it will be made in), the module it loads and the PIN file.
	h := home{dir: *homeDir}
	if _, err := os.Lstat(h.dir); err == nil {
		if err := h.check(); err != nil {
			return err
		}
	} else if abs, aerr := filepath.Abs(h.dir); aerr != nil {
		return usageErrorf("init: --home %q: %v", h.dir, aerr)
	} else if err := checkExistingParents(abs, homePolicy.what+" "+abs); err != nil {
		return err
	}
	if err := checkModule(*module); err != nil {
		return moduleError(err, "--module (the HSM vendor's PKCS#11 library, for SoftHSM2 often /usr/lib/softhsm/libsofthsm2.so)")
	}
	if err := checkPINSource(pin); err != nil {
		return err
	}
	want := siteConfig{
		Version: 1, Module: *module, ModuleInitArgs: *initArgs, Token: *token, TokenSerial: *serial, PINSource: pin,
		AllowNoTokenRNG: *allowNoRNG,
		SealKeyLabel:    keyquorum.DefaultSealKeyLabel, IdentityLabel: keyquorum.DefaultIdentityLabel,
	}
	var cfg *siteConfig
	if isNotSetUp(h) {
		cfg = &want
	} else if cfg, err = h.loadConfig(); err != nil {
		return err
	} else {
		if cfg.Module != want.Module || cfg.Token != want.Token || cfg.TokenSerial != want.TokenSerial || cfg.ModuleInitArgs != want.ModuleInitArgs {
			return fmt.Errorf("%w: %s is already set up for token %q (serial %q) of module %s with module-init-args %q; use another --home for token %q, or edit %s if the token's module or database moved",
				errHomeMismatch, h.dir, cfg.Token, cfg.TokenSerial, cfg.Module, cfg.ModuleInitArgs, want.Token, h.path(configFile))
		}
		// A new PIN source is allowed (the PIN file may have moved), and
		// the generator opt-out follows the flags of the latest init.
		cfg.PINSource = want.PINSource
		cfg.AllowNoTokenRNG = want.AllowNoTokenRNG
	}

	// Whatever this run creates is removed again if it fails: keys in the
	// token, the store, the home's files, the home itself. A failed init
	// leaves the site as it found it, and a second init starts clean.
	undo := newInitUndo(h)
	defer func() {
		if err != nil {
			if uerr := undo.run(ctx); uerr != nil {
				err = errors.Join(err, fmt.Errorf("undoing what this init created: %w", uerr))
			}
		}
	}()

	// Open the token before anything is written, so that a wrong PIN or
	// token leaves no trace; then load or create the keys.
	keys, err := setUpKeys(ctx, cfg, keyquorum.SealKeyLabel(h.storeDir(), cfg.SealKeyLabel), undo)
	if err != nil {
		return err
	}
	node, err := keyquorum.Open(ctx, keyquorum.Config{
		HSM:             cfg.hsm(),
		SealKeyLabel:    cfg.SealKeyLabel,
		IdentityLabel:   cfg.IdentityLabel,
		StoreDir:        h.storeDir(),
		AllowNoTokenRNG: cfg.AllowNoTokenRNG,
		Offline:         true, // Open creates DIR and DIR/store with mode 0700
	})
	if errors.Is(err, hsmshare.ErrStoreLocked) {
		return fmt.Errorf("%w: is `kqnode run --home %s` running? Stop it before running init again", err, h.dir)
	}
	if err != nil {
		return err
	}
	undo.node = node
	defer node.Close()
	// Open made the home if it was new: check it before writing into it.
	if err := h.check(); err != nil {
		return err
	}
	for _, k := range []hsmKeyInfo{keys.seal, keys.identity} {
		if !k.Local {
			fmt.Fprintf(stderr, "note: token %q reports CKA_LOCAL false for key %q (NSS softoken does so for keys it generated); keyquorum relies on CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE, which it has\n", cfg.Token, k.Label)
		}
	}
	pub, err := node.IdentityPublicKey().Bytes()
	if err != nil {
		return fmt.Errorf("identity public key: %w", err)
	}
	if cfg.PeerID != "" && cfg.PeerID != string(node.PartyID()) {
		return fmt.Errorf("%w: the token's identity key is peer %s, but %s was set up as %s: use the token %s was set up with, or another --home", errHomeMismatch, node.PartyID(), h.dir, cfg.PeerID, h.dir)
	}
	cfg.PeerID = string(node.PartyID())
	cfg.IdentityPublicKey = hex.EncodeToString(pub)

	imported := 0
	for _, f := range fixtureFiles {
		sum, pp, err := readFixture(f)
		if err != nil {
			return err
		}
		if slices.Contains(cfg.ImportedFixtures, sum) {
			continue
		}
		err = node.ImportPreParams(ctx, pp)
		pp.Wipe()
		if err != nil {
			return fmt.Errorf("fixture %s: %w", f, err)
		}
		cfg.ImportedFixtures = append(cfg.ImportedFixtures, sum)
		cfg.TestFixtures = true
		imported++
		// Save after each set, so a failure never lets one be imported twice.
		if err := h.saveConfig(cfg); err != nil {
			return err
		}
	}
	if err := h.saveConfig(cfg); err != nil {
		return err
	}
	st, err := node.Status(ctx)
	if err != nil {
		return err
	}
	operators := newOperatorSet(h)
	if admin != nil {
		if _, serr := os.Lstat(h.path(operatorsFile)); serr == nil {
			if operators, err = loadOperators(h); err != nil {
				return err
			}
		}
		if _, err = operators.add(admin, "init"); err != nil {
			return fmt.Errorf("--admin-key %s: %w", *adminKey, err)
		}
	} else if _, serr := os.Lstat(h.path(operatorsFile)); serr != nil {
		fmt.Fprintf(stderr, "note: %s has no operators yet, so nobody can use its control API: run init again with --admin-key KEY.pub (the site refuses to start without operators)\n", h.dir)
	}
	if cfg.TestFixtures {
		fmt.Fprintln(stderr, "WARNING: "+fixtureWarning)
	}
	undo.done()
	return printJSON(stdout, initResult{PeerID: cfg.PeerID, IdentityPublicKey: cfg.IdentityPublicKey,
		SealKey: keys.seal, IdentityKey: keys.identity,
		PreParamsReady: st.PreParams.Ready, FixturesImported: imported})
}

// initKeys are the site's keys as init found or made them.
type initKeys struct{ seal, identity hsmKeyInfo }

// setUpKeys opens the token, loads the site's seal key (sealLabel: the
// configured label, or the generation a rotation left in the store) and
// identity key and creates the missing ones, registering what it creates
// with undo.
func setUpKeys(ctx context.Context, cfg *siteConfig, sealLabel string, undo *initUndo) (initKeys, error) {
	var out initKeys
	tok, err := hsmshare.Open(ctx, cfg.hsm())
	if err != nil {
		return out, err
	}
	undo.tok = tok
	seal, err := tok.SealKey(ctx, sealLabel)
	created := false
	if errors.Is(err, hsmshare.ErrKeyNotFound) {
		if seal, err = tok.CreateSealKey(ctx, sealLabel); err == nil {
			created, undo.seal = true, seal
		}
	}
	if err != nil {
		return out, fmt.Errorf("seal key %q on token %q: %w", sealLabel, cfg.Token, err)
	}
	sa, err := seal.Attributes(ctx)
	if err != nil {
		return out, fmt.Errorf("seal key %q on token %q: %w", sealLabel, cfg.Token, err)
	}
	out.seal = hsmKeyInfo{Label: seal.Label(), ID: seal.ID(), Scheme: seal.Scheme().String(), Created: created, Local: sa.Local}

	idn, err := tok.Identity(ctx, cfg.IdentityLabel)
	created = false
	if errors.Is(err, hsmshare.ErrKeyNotFound) {
		if idn, err = tok.CreateIdentity(ctx, cfg.IdentityLabel); err == nil {
			created, undo.identity = true, idn
		}
	}
	if err != nil {
		return out, fmt.Errorf("identity key %q on token %q: %w", cfg.IdentityLabel, cfg.Token, err)
	}
	ia, err := idn.Attributes(ctx)
	if err != nil {
		return out, fmt.Errorf("identity key %q on token %q: %w", cfg.IdentityLabel, cfg.Token, err)
	}
	out.identity = hsmKeyInfo{Label: idn.Label(), ID: idn.ID(), Created: created, Local: ia.Local}
	return out, nil
}

// initUndo removes what a failed init created, and only that.
type initUndo struct {
	h home
	// What existed before this run.
	hadHome, hadStore, hadConfig bool

	tok      *hsmshare.Token
	node     interface{ Close() error }
	seal     *hsmshare.SealKey
	identity *hsmshare.Identity
}

func newInitUndo(h home) *initUndo {
	exists := func(p string) bool {
		_, err := os.Lstat(p)
		return !errors.Is(err, fs.ErrNotExist)
	}
	return &initUndo{h: h, hadHome: exists(h.dir), hadStore: exists(h.storeDir()),
		hadConfig: exists(h.path(configFile))}
}

// done is called when init succeeded: nothing is undone.
func (u *initUndo) done() {
	if u.tok != nil {
		u.tok.Close()
	}
	*u = initUndo{h: u.h, hadHome: true, hadStore: true, hadConfig: true}
}

// run undoes, in reverse order: the store and files (after the node that
// holds the store is closed), then the keys, then the home.
func (u *initUndo) run(ctx context.Context) error {
	var errs []error
	if u.node != nil {
		if err := u.node.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if !u.hadStore {
		if err := os.RemoveAll(u.h.storeDir()); err != nil {
			errs = append(errs, err)
		}
	}
	if !u.hadConfig {
		if err := os.Remove(u.h.path(configFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if u.identity != nil {
		if err := u.identity.Destroy(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if u.seal != nil {
		if err := u.seal.Destroy(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if u.tok != nil {
		if err := u.tok.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if !u.hadHome {
		// Only an empty directory: anything else in it is not ours.
		if err := os.Remove(u.h.dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// moduleError explains a PKCS#11 module that does not exist in the
// command's terms: fix names what to check (a flag, or config.json).
func moduleError(err error, fix string) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w: check %s", hsmshare.ErrModuleNotFound, err, fix)
	}
	return err
}

// isNotSetUp reports a home directory without config.json (a symbolic
// link there counts as set up, and loadConfig refuses it).
func isNotSetUp(h home) bool {
	_, err := os.Lstat(h.path(configFile))
	return errors.Is(err, fs.ErrNotExist)
}

// fixturePaths expands a comma-separated list of files and directories
// into the fixture files, sorted within each directory.
func fixturePaths(list string) ([]string, error) {
	var out []string
	for _, p := range splitList(list) {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		m, err := filepath.Glob(filepath.Join(p, "*.json"))
		if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("%s holds no *.json fixture", p)
		}
		sort.Strings(m)
		out = append(out, m...)
	}
	return out, nil
}

// readFixture loads one pre-parameter set (tss-lib's LocalPreParams JSON)
// and returns the SHA-256 of the file with it.
func readFixture(path string) (string, *keyquorum.PreParams, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	defer clear(b)
	sum := sha256.Sum256(b)
	pp, err := keyquorum.ParsePreParams(b)
	if err != nil {
		return "", nil, fmt.Errorf("fixture %s: %w", path, err)
	}
	return hex.EncodeToString(sum[:]), pp, nil
}
