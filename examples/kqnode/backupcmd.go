package main

// backup and restore: a site's sealed store and the files needed to
// rebuild its home, without presignatures (README "Backups").

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/transport"
)

// maxBackupFile bounds a backup file: its content and the tar headers
// around it.
const maxBackupFile = hsmshare.MaxBackupSize + 64<<20

// Codes of backup and restore failures.
const (
	// codeFileExists: backup --out names an existing file and --force
	// was not given.
	codeFileExists = "file_exists"
	// codeBadBackup: the backup file is damaged, truncated, not a
	// backup, or holds presignatures.
	codeBadBackup = "bad_backup"
	// codeWrongSealKey: the backup's records are sealed under a key this
	// token does not hold (another token, or a rotated seal key).
	codeWrongSealKey = "wrong_seal_key"
	// codeRestoreConflict: the store already holds records (--replace),
	// or is sealed under another key.
	codeRestoreConflict = "restore_conflict"
)

var errFileExists = errors.New("file exists")

// siteFiles are the files of a home carried in a backup: what a restore
// needs, with the same HSM token, to rebuild the home on a new disk.
var siteFiles = []struct {
	name  string
	pol   trustPolicy
	limit int64
	need  bool
}{
	{configFile, configPolicy, maxConfigSize, true},
	{operatorsFile, operatorsPolicy, maxOperatorsFileSize, false},
}

// readSiteFiles reads the home's files that a backup carries.
func readSiteFiles(h home) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, f := range siteFiles {
		b, err := readTrusted(h.path(f.name), f.pol, f.limit)
		if errors.Is(err, fs.ErrNotExist) && !f.need {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[f.name] = b
	}
	return out, nil
}

// backupResult is what kqnode backup prints.
type backupResult struct {
	File   string `json:"file"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
	// Via is "site" when the running site wrote the snapshot (and
	// recorded it in its audit log), "store" when the site was stopped
	// and the store was read directly.
	Via string `json:"via"`
	*keyquorum.BackupResult
}

// cmdBackup writes a backup of a site's store and home files to --out.
func cmdBackup(ctx context.Context, e *env, args []string) error {
	const synopsis = "kqnode backup --home DIR --out FILE [--force] [--json]"
	f := newClientFlags("backup", synopsis)
	out := f.String("out", "", "the backup file to write (required; mode 0600)")
	force := f.Bool("force", false, "replace --out if it exists")
	e.json = wantsJSON(args)
	if err := f.flagSet.parse(args, e.stdout); err != nil {
		return err
	}
	e.json = *f.json
	if *f.home == "" || *out == "" {
		return usageErrorf("backup: --home and --out are required\nusage: %s", synopsis)
	}
	if f.NArg() != 0 {
		return usageErrorf("backup: takes no arguments\nusage: %s", synopsis)
	}
	if _, err := os.Lstat(*out); err == nil && !*force {
		return fmt.Errorf("%w: %s: give another --out, or --force to replace it", errFileExists, *out)
	}
	h := home{dir: *f.home}
	data, via, err := backupFromSite(ctx, f, h)
	if errors.Is(err, errNotRunning) {
		data, via, err = backupFromStore(ctx, h)
	}
	if err != nil {
		return err
	}
	b, err := hsmshare.ReadBackup(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("the backup %s made does not read back (nothing written to %s): %w", via, *out, err)
	}
	if err := writeBackupFile(*out, data, *force); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	return output(e, &backupResult{File: *out, Bytes: len(data), SHA256: hex.EncodeToString(sum[:]), Via: via,
		BackupResult: keyquorum.DescribeBackup(b.Info())})
}

// backupFromSite asks the running site for a backup; errNotRunning when
// no site answers for the home.
func backupFromSite(ctx context.Context, f *clientFlags, h home) ([]byte, string, error) {
	if err := h.check(); err != nil {
		return nil, "", err
	}
	if _, err := h.loadAPI(); err != nil {
		return nil, "", err
	}
	signer, err := loadOperatorKey(*f.operatorKey)
	if err != nil {
		return nil, "", err
	}
	c, err := newClient(h.dir, *f.timeout, signer)
	if err != nil {
		return nil, "", err
	}
	data, err := c.roundTrip(ctx, pathBackup, struct{}{}, maxBackupFile)
	return data, "site", err
}

// backupFromStore backs up the store of a stopped site: it opens the
// token (reading the PIN) and the store, whose lock tells whether the site
// runs after all.
func backupFromStore(ctx context.Context, h home) ([]byte, string, error) {
	cfg, err := h.loadConfig()
	if err != nil {
		return nil, "", err
	}
	files, err := readSiteFiles(h)
	if err != nil {
		return nil, "", err
	}
	if err := checkModule(cfg.Module); err != nil {
		return nil, "", moduleError(err, fmt.Sprintf(`"module" in %s`, h.path(configFile)))
	}
	if err := checkPINSource(cfg.PINSource); err != nil {
		return nil, "", err
	}
	tok, err := hsmshare.Open(ctx, cfg.hsm())
	if err != nil {
		return nil, "", err
	}
	defer tok.Close()
	label := keyquorum.SealKeyLabel(h.storeDir(), cfg.SealKeyLabel)
	seal, err := tok.SealKey(ctx, label)
	if err != nil {
		return nil, "", fmt.Errorf("seal key %q on token %q: %w", label, cfg.Token, err)
	}
	st, err := hsmshare.OpenStore(h.storeDir(), seal, cfg.PeerID)
	if errors.Is(err, hsmshare.ErrStoreLocked) {
		return nil, "", fmt.Errorf("%w (the site seems to run but its API did not answer: check `kqnode status --home %s`)", err, h.dir)
	}
	if err != nil {
		return nil, "", err
	}
	defer st.Close()
	var buf bytes.Buffer
	if _, err := keyquorum.BackupStore(ctx, st, &buf, keyquorum.BackupRequest{SiteFiles: files}); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), "store", nil
}

// writeBackupFile writes data to path atomically (temp file, fsync,
// rename or link, fsync of the directory), mode 0600, never over an
// existing file unless force.
func writeBackupFile(path string, data []byte, force bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write the backup: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write the backup: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write the backup %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write the backup %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write the backup %s: %w", path, err)
	}
	if force {
		err = os.Rename(tmp, path)
	} else if err = os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %s appeared while the backup was made: give another --out, or --force to replace it", errFileExists, path)
	}
	if err != nil {
		return fmt.Errorf("write the backup %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// backup answers a backup of the site's store: the tar stream itself
// (application/x-tar), made into memory first so that a failure answers
// an error and never half a backup.
func (s *server) backup(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	files, err := readSiteFiles(home{dir: s.home})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var buf bytes.Buffer
	if _, err := s.node.Backup(r.Context(), &buf, keyquorum.BackupRequest{SiteFiles: files}); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// restoreResult is what kqnode restore prints.
type restoreResult struct {
	Home   string `json:"home"`
	From   string `json:"from"`
	PeerID string `json:"peer_id"`
	// Keys are the keys whose shares were restored.
	Keys []string `json:"keys"`
	// Created is when the backup was taken.
	Created time.Time `json:"created"`
	*hsmshare.RestoreResult
	// SiteFilesWritten are the home files written from the backup;
	// SiteFilesKept those the home had, left as they were.
	SiteFilesWritten []string `json:"site_files_written"`
	SiteFilesKept    []string `json:"site_files_kept"`
	// NotRestored are the kinds of records a backup never holds.
	NotRestored []string `json:"not_restored"`
	// AuditLog says what happens to the site's audit log.
	AuditLog string `json:"audit_log"`
}

// cmdRestore restores a backup into a stopped site's home.
func cmdRestore(ctx context.Context, e *env, args []string) (err error) {
	const synopsis = "kqnode restore --home DIR --from FILE [--replace] [--json]"
	f := newFlagSet("restore", synopsis)
	homeDir := f.String("home", "", "the site's home directory; created (0700) if it does not exist (required)")
	from := f.String("from", "", "the backup file (required)")
	replace := f.Bool("replace", false, "restore into a store that already holds records: the backup's versions replace the same versions, newer versions stay")
	asJSON := f.Bool("json", false, "print exactly one JSON object on stdout (also on failure)")
	e.json = wantsJSON(args)
	if err := f.parse(args, e.stdout); err != nil {
		return err
	}
	e.json = *asJSON
	if *homeDir == "" || *from == "" {
		return usageErrorf("restore: --home and --from are required\nusage: %s", synopsis)
	}
	if f.NArg() != 0 {
		return usageErrorf("restore: takes no arguments\nusage: %s", synopsis)
	}
	b, err := readBackupFile(*from)
	if err != nil {
		return err
	}
	info := b.Info()
	backupCfg, ok := b.File(configFile)
	if !ok {
		return fmt.Errorf("%w: %s carries no %s: it is not a kqnode backup", hsmshare.ErrBadBackup, *from, configFile)
	}
	var bcfg siteConfig
	if err := json.Unmarshal(backupCfg, &bcfg); err != nil || bcfg.Version != 1 || bcfg.PeerID != info.Party {
		return fmt.Errorf("%w: the %s in %s is not this site's configuration (peer %q, backup of %q)", hsmshare.ErrBadBackup, configFile, *from, bcfg.PeerID, info.Party)
	}

	// The home: an existing one must be this site's, a new one is made.
	abs, err := filepath.Abs(*homeDir)
	if err != nil {
		return usageErrorf("restore: --home %q: %v", *homeDir, err)
	}
	h := home{dir: abs}
	_, lerr := os.Lstat(h.dir)
	madeHome := errors.Is(lerr, fs.ErrNotExist)
	if madeHome {
		if err := checkExistingParents(abs, homePolicy.what+" "+abs); err != nil {
			return err
		}
		if err := os.Mkdir(h.dir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", h.dir, err)
		}
		defer func() {
			if err != nil { // the named result: a failed restore
				os.RemoveAll(h.dir) // only what this run wrote
			}
		}()
	} else if err := h.check(); err != nil {
		return err
	}
	cfg := &bcfg
	if !isNotSetUp(h) {
		if cfg, err = h.loadConfig(); err != nil {
			return err
		}
		if cfg.PeerID != info.Party {
			return fmt.Errorf("%w: %s is the home of site %s; the backup is of site %s: restore it into its own home, or into a new directory",
				errHomeMismatch, h.dir, cfg.PeerID, info.Party)
		}
	}
	if err := checkModule(cfg.Module); err != nil {
		return moduleError(err, fmt.Sprintf(`"module" in %s`, configFile))
	}
	if err := checkPINSource(cfg.PINSource); err != nil {
		return err
	}
	tok, err := hsmshare.Open(ctx, cfg.hsm())
	if err != nil {
		return err
	}
	defer tok.Close()
	if err := checkIdentity(ctx, tok, cfg, info.Party); err != nil {
		return err
	}
	seal, err := tok.SealKey(ctx, info.SealKeyLabel)
	if errors.Is(err, hsmshare.ErrKeyNotFound) {
		return fmt.Errorf("%w: token %q holds no seal key %q, which sealed this backup: it was rotated away since (back up again after every rotate-seal-key) or this is another token (%v)",
			hsmshare.ErrWrongSealKey, cfg.Token, info.SealKeyLabel, err)
	}
	if err != nil {
		return fmt.Errorf("seal key %q on token %q: %w", info.SealKeyLabel, cfg.Token, err)
	}
	res, err := keyquorum.RestoreStore(ctx, h.storeDir(), seal, info.Party, b, *replace)
	if errors.Is(err, hsmshare.ErrTampered) || errors.Is(err, hsmshare.ErrCorrupted) {
		return fmt.Errorf("%w: %w", hsmshare.ErrBadBackup, err)
	}
	if errors.Is(err, hsmshare.ErrStoreLocked) {
		return fmt.Errorf("%w: the site is running: stop it first (kill $(jq -r .pid %s)), then restore", err, h.path(apiFile))
	}
	if err != nil {
		return err
	}

	out := &restoreResult{Home: h.dir, From: *from, PeerID: info.Party, Keys: keyquorum.DescribeBackup(info).Keys,
		Created: info.Created, RestoreResult: res, SiteFilesWritten: []string{}, SiteFilesKept: []string{},
		NotRestored: info.Excluded}
	for _, sf := range siteFiles {
		data, ok := b.File(sf.name)
		if !ok {
			continue
		}
		if _, err := os.Lstat(h.path(sf.name)); err == nil {
			out.SiteFilesKept = append(out.SiteFilesKept, sf.name)
			continue
		}
		if err := writeFileAtomic(h.path(sf.name), data, 0o600); err != nil {
			return fmt.Errorf("restore %s: %w (the store is restored; copy it from the backup by hand or run restore again with --replace)", sf.name, err)
		}
		out.SiteFilesWritten = append(out.SiteFilesWritten, sf.name)
	}
	if _, err := os.Stat(h.path("audit")); err == nil {
		out.AuditLog = "kept: the home's audit log continues"
	} else {
		out.AuditLog = "none: the site starts a new audit log at its next start, and the other sites, as its witnesses, report its first checkpoint as a rewrite (audit_alerts)"
	}
	if madeHome {
		fmt.Fprintf(e.stderr, "note: %s was created from the backup; start the site with the same `kqnode run` line as before (peer and policy files are not in the backup)\n", h.dir)
	}
	slices.Sort(out.Keys)
	return output(e, out)
}

// readBackupFile reads and checks a backup file (hsmshare.ReadBackup).
func readBackupFile(path string) (*hsmshare.Backup, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	b, err := hsmshare.ReadBackup(io.LimitReader(f, maxBackupFile))
	if err != nil {
		return nil, fmt.Errorf("restore from %s: %w (nothing was restored)", path, err)
	}
	return b, nil
}

// checkIdentity checks that the token holds the identity key of the site
// party: the backup is restored onto its own token.
func checkIdentity(ctx context.Context, tok *hsmshare.Token, cfg *siteConfig, party string) error {
	idn, err := tok.Identity(ctx, cfg.IdentityLabel)
	if err != nil {
		return fmt.Errorf("identity key %q on token %q: %w (restore onto the site's own token)", cfg.IdentityLabel, cfg.Token, err)
	}
	p, err := transport.PartyIDFromPublicKey(idn.PublicKey())
	if err != nil {
		return err
	}
	if string(p) != party {
		return fmt.Errorf("%w: token %q holds the identity of site %s, the backup is of site %s: restore it onto that site's token",
			errHomeMismatch, cfg.Token, p, party)
	}
	return nil
}
