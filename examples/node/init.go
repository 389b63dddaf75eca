package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/hsmshare"
)

type initResult struct {
	PeerID            string `json:"peer_id"`
	IdentityPublicKey string `json:"identity_public_key"`
	// PreParamsReady is how many pre-parameter sets the site holds.
	PreParamsReady int `json:"preparams_ready"`
	// FixturesImported counts the test fixture sets imported by this run.
	FixturesImported int `json:"fixtures_imported,omitempty"`
}

func cmdInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("init", "kqnode init --home DIR --module PATH --token LABEL --pin-source file:PATH|env:VAR [--token-serial SERIAL] [--preparams-fixtures PATH,...] [--json]")
	homeDir := fs.String("home", "", "site home directory to create (required)")
	module := fs.String("module", "", "PKCS#11 module path, e.g. /usr/lib/softhsm/libsofthsm2.so (required)")
	token := fs.String("token", "", "token label (required)")
	serial := fs.String("token-serial", "", "token serial, when several tokens share the label")
	pinSource := fs.String("pin-source", "", "where the user PIN is read at every start: file:PATH (mode 0600) or env:VAR (required)")
	fixtures := fs.String("preparams-fixtures", "", "TEST ONLY: import Paillier pre-parameter fixtures (files or directories of *.json, comma-separated) so keygen needs no safe primes; their secrets are public, keys made with them must never hold value")
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
		return err
	}
	if err := checkPINSource(pin); err != nil {
		return err
	}
	want := siteConfig{
		Version: 1, Module: *module, Token: *token, TokenSerial: *serial, PINSource: pin,
		SealKeyLabel: keyquorum.DefaultSealKeyLabel, IdentityLabel: keyquorum.DefaultIdentityLabel,
	}
	var cfg *siteConfig
	if isNotSetUp(h) {
		cfg = &want
	} else if cfg, err = h.loadConfig(); err != nil {
		return err
	} else {
		if cfg.Module != want.Module || cfg.Token != want.Token || cfg.TokenSerial != want.TokenSerial {
			return fmt.Errorf("%s is already set up for token %q (serial %q) of module %s; use another --home for token %q",
				h.dir, cfg.Token, cfg.TokenSerial, cfg.Module, want.Token)
		}
		// A new PIN source is allowed (the PIN file may have moved).
		cfg.PINSource = want.PINSource
	}

	// Open the token before anything is written, so that a wrong PIN or
	// token leaves no trace.
	node, err := keyquorum.Open(ctx, keyquorum.Config{
		HSM:           hsmshare.Config{ModulePath: cfg.Module, TokenLabel: cfg.Token, TokenSerial: cfg.TokenSerial, PINSource: cfg.PINSource},
		SealKeyLabel:  cfg.SealKeyLabel,
		IdentityLabel: cfg.IdentityLabel,
		CreateKeys:    true,
		StoreDir:      h.storeDir(),
		Offline:       true, // Open creates DIR and DIR/store with mode 0700
	})
	if errors.Is(err, hsmshare.ErrStoreLocked) {
		return fmt.Errorf("%w: is `kqnode run --home %s` running? Stop it before running init again", err, h.dir)
	}
	if err != nil {
		return err
	}
	defer node.Close()
	// Open made the home if it was new: check it before writing into it.
	if err := h.check(); err != nil {
		return err
	}
	pub, err := node.IdentityPublicKey().Bytes()
	if err != nil {
		return fmt.Errorf("identity public key: %w", err)
	}
	if cfg.PeerID != "" && cfg.PeerID != string(node.PartyID()) {
		return fmt.Errorf("the token's identity key is peer %s, but %s was set up as %s", node.PartyID(), h.dir, cfg.PeerID)
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
		if err := node.ImportPreParams(ctx, pp); err != nil {
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
	if cfg.TestFixtures {
		fmt.Fprintln(stderr, "WARNING: "+fixtureWarning)
	}
	return printJSON(stdout, initResult{PeerID: cfg.PeerID, IdentityPublicKey: cfg.IdentityPublicKey,
		PreParamsReady: st.PreParams.Ready, FixturesImported: imported})
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
func readFixture(path string) (string, *keygen.LocalPreParams, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	defer clear(b)
	sum := sha256.Sum256(b)
	var pp keygen.LocalPreParams
	if err := json.Unmarshal(b, &pp); err != nil {
		return "", nil, fmt.Errorf("fixture %s is not a pre-parameter set: %w", path, err)
	}
	return hex.EncodeToString(sum[:]), &pp, nil
}
