package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/proctest"
)

// TestCLI_BackupAndRestore is the README's backup procedure on three
// kqnode processes: site A is backed up while it runs (and again while it
// is stopped), loses its whole home (its HSM token stays), is restored
// from the backup and signs again, GG18 and GG20, with the same key. Its
// presignatures do not come back; restore is refused while the site runs
// and into a store that already holds records.
func TestCLI_BackupAndRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("three kqnode processes through a keygen")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, root := buildCLI(ctx, t)
	sites := initSites(t, c, root, 1)
	a, b, sc := sites[0], sites[1], sites[2]
	cluster := proctest.New(t)
	runSites(ctx, t, c, cluster, writeNamedPeers(t, root, sites), testPolicyFile(t), sites, "--audit-checkpoint-interval", "3s")
	key := keygen2of3(t, c, a, b, sc)
	signers := a.peerID + "," + b.peerID
	var made presignResult
	c.ok(t, nil, &made, "presign", "--home", a.home, "--key", key.KeyID, "--count", "2", "--signers", signers)

	// Backup while the site runs: the site writes the snapshot.
	file := filepath.Join(root, "a.kqbackup")
	var bk backupResult
	c.ok(t, nil, &bk, "backup", "--home", a.home, "--out", file)
	if bk.Via != "site" || !slices.Equal(bk.Keys, []string{key.KeyID}) || bk.Kinds["presig"] != 0 || bk.Kinds["preparams"] != 0 ||
		!slices.Equal(bk.Excluded, []string{"preparams", "presig"}) || !slices.Equal(bk.SiteFiles, []string{configFile, operatorsFile}) {
		t.Fatalf("backup of a running site: %+v %+v; want key %s, no presignatures", bk, bk.BackupResult, key.KeyID)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != int64(bk.Bytes) {
		t.Fatalf("backup file: %v, %v; want %d bytes, mode 0600", fi, err, bk.Bytes)
	}
	c.fails(t, nil, 1, codeFileExists, "backup", "--home", a.home, "--out", file)
	if !slices.ContainsFunc(auditEntries(t, c, a.home), func(e string) bool { return strings.Contains(e, `"store.backup"`) }) {
		t.Fatal("no store.backup entry in the site's audit log")
	}
	c.fails(t, a.env(), 1, codeStoreLocked, "restore", "--home", a.home, "--from", file)

	stopSite(ctx, t, a)
	// Backup of the stopped site: straight from its store, with its PIN.
	var stopped backupResult
	c.ok(t, a.env(), &stopped, "backup", "--home", a.home, "--out", filepath.Join(root, "a-stopped.kqbackup"))
	if stopped.Via != "store" || !slices.Equal(stopped.Keys, []string{key.KeyID}) || stopped.Kinds["presig"] != 0 {
		t.Fatalf("backup of a stopped site: %+v %+v", stopped, stopped.BackupResult)
	}

	// The disk is lost: the whole home, the token stays.
	if err := os.RemoveAll(a.home); err != nil {
		t.Fatal(err)
	}
	var rs restoreResult
	c.ok(t, a.env(), &rs, "restore", "--home", a.home, "--from", file)
	if rs.PeerID != a.peerID || !slices.Equal(rs.Keys, []string{key.KeyID}) || rs.Restored == 0 ||
		!slices.Equal(rs.SiteFilesWritten, []string{configFile, operatorsFile}) || !slices.Equal(rs.NotRestored, []string{"preparams", "presig"}) {
		t.Fatalf("restore: %+v %+v", rs, rs.RestoreResult)
	}
	c.fails(t, a.env(), 1, codeRestoreConflict, "restore", "--home", a.home, "--from", file)

	if err := a.proc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitReady(ctx, t, a)
	var pools poolsListResult
	c.ok(t, nil, &pools, "pools", "list", "--home", a.home)
	for _, p := range pools.Pools {
		if p.Own && p.Ready+p.Reserved != 0 {
			t.Fatalf("restored site holds presignatures of its own pool: %+v", p)
		}
	}
	var sig signResult
	c.ok(t, nil, &sig, "sign", "--home", a.home, "--key", key.KeyID, "--signers", signers, "--protocol", "gg18", "--digest", strings.Repeat("ab", 32))
	if sig.PublicKey != key.PublicKey || sig.Protocol != "gg18" {
		t.Fatalf("GG18 after the restore: %s under %s; want gg18 under %s", sig.Protocol, sig.PublicKey, key.PublicKey)
	}
	c.fails(t, nil, 1, codeNoPresignature, "sign", "--home", a.home, "--key", key.KeyID, "--signers", signers, "--protocol", "gg20", "--digest", strings.Repeat("ac", 32))
	c.ok(t, nil, &made, "presign", "--home", a.home, "--key", key.KeyID, "--count", "1", "--signers", signers)
	c.ok(t, nil, &sig, "sign", "--home", a.home, "--key", key.KeyID, "--signers", signers, "--protocol", "gg20", "--digest", strings.Repeat("cd", 32))
	if sig.PublicKey != key.PublicKey || sig.Protocol != "gg20" {
		t.Fatalf("GG20 after the restore: %s under %s; want gg20 under %s", sig.Protocol, sig.PublicKey, key.PublicKey)
	}

	// The restored site started a new audit log; site B, its witness,
	// holds a checkpoint of the old one and refuses the new one as a
	// rewrite, with an alert.
	deadline := time.Now().Add(time.Minute)
	for {
		var st statusResult
		c.ok(t, nil, &st, "status", "--home", b.home)
		if i := slices.IndexFunc(st.AuditAlerts, func(s string) bool { return strings.Contains(s, a.peerID) }); i >= 0 {
			t.Logf("site B's alert: %s", st.AuditAlerts[i])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("site B raised no audit alert about the restored site's new log: %q", st.AuditAlerts)
		}
		time.Sleep(time.Second)
	}
}

// stopSite stops a site as an operator would: SIGTERM to the PID in its
// api.json.
func stopSite(ctx context.Context, t *testing.T, s *e2eSite) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.home, apiFile))
	if err != nil {
		t.Fatal(err)
	}
	var api apiInfo
	if err := json.Unmarshal(data, &api); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(api.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.proc.Wait(wctx); err != nil {
		t.Fatal(err)
	}
}

// TestCLI_BackupAndRestoreRefusals: a stopped site is backed up from its
// store; a backup is never written over a file without --force; a
// truncated backup is refused with nothing restored; a home that holds
// records needs --replace, which then replaces the same versions.
func TestCLI_BackupAndRestoreRefusals(t *testing.T) {
	s := newTestSite(t)
	file := filepath.Join(s.root, "site.kqbackup")
	if code, eb, stderr := runClient(t, "backup", "--home", s.home, "--out", file); code != 0 {
		t.Fatalf("backup of a stopped site: exit %d %+v %s", code, eb, stderr)
	}
	if code, eb, _ := runClient(t, "backup", "--home", s.home, "--out", file); code != 1 || eb.Code != codeFileExists {
		t.Fatalf("backup over an existing file: exit %d %+v; want %s", code, eb, codeFileExists)
	}
	if code, eb, _ := runClient(t, "backup", "--home", s.home, "--out", file, "--force"); code != 0 {
		t.Fatalf("backup --force: exit %d %+v", code, eb)
	}
	if code, eb, _ := runClient(t, "backup", "--home", s.home); code != 2 || eb.Code != codeBadRequest {
		t.Fatalf("backup without --out: exit %d %+v; want a usage error", code, eb)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(s.root, "cut.kqbackup")
	if err := os.WriteFile(cut, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(s.root, "fresh")
	if code, eb, _ := runClient(t, "restore", "--home", fresh, "--from", cut); code != 1 || eb.Code != codeBadBackup {
		t.Fatalf("restore of a truncated backup: exit %d %+v; want %s", code, eb, codeBadBackup)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Fatalf("a refused restore left %s behind (%v)", fresh, err)
	}
	// init made records (the QUIC secret, pre-parameters are left out).
	if code, eb, _ := runClient(t, "restore", "--home", s.home, "--from", file); code != 1 || eb.Code != codeRestoreConflict {
		t.Fatalf("restore into a home with records: exit %d %+v; want %s", code, eb, codeRestoreConflict)
	}
	var stdout, stderr strings.Builder
	if code := run(context.Background(), []string{"restore", "--home", s.home, "--from", file, "--replace", "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("restore --replace: exit %d: %s", code, stderr.String())
	}
	var rs restoreResult
	if err := json.Unmarshal([]byte(stdout.String()), &rs); err != nil || rs.RestoreResult == nil || rs.Restored == 0 || rs.Replaced != rs.Restored ||
		!slices.Equal(rs.SiteFilesKept, []string{configFile, operatorsFile}) || len(rs.SiteFilesWritten) != 0 {
		t.Fatalf("restore --replace printed %s (%v); want every version replaced, the home's files kept", stdout.String(), err)
	}
}
