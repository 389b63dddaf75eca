package driver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyquorum/keyquorum/internal/bench/internal/party"
)

func TestSnapshotRestore_PutsStoresBack(t *testing.T) {
	root := t.TempDir()
	l := &Lab{Root: root}
	for i := range 2 {
		dir := filepath.Join(root, "site"+string(rune('0'+i)), "store")
		if err := os.MkdirAll(filepath.Join(dir, "presig"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "presig", "batch"), []byte("ready"), 0o600); err != nil {
			t.Fatal(err)
		}
		l.Sites = append(l.Sites, party.Site{Index: i, StoreDir: dir})
	}
	if l.HasSnapshot("pool") {
		t.Fatal("snapshot exists before Snapshot")
	}
	if err := l.Snapshot("pool"); err != nil {
		t.Fatal(err)
	}
	// Signing consumes: the batch is rewritten and a new record appears.
	for _, s := range l.Sites {
		if err := os.WriteFile(filepath.Join(s.StoreDir, "presig", "batch"), []byte("used"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.StoreDir, "new"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Restore("pool"); err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Sites {
		got, err := os.ReadFile(filepath.Join(s.StoreDir, "presig", "batch"))
		if err != nil || string(got) != "ready" {
			t.Errorf("site %d batch after restore: %q, %v", s.Index, got, err)
		}
		if _, err := os.Stat(filepath.Join(s.StoreDir, "new")); !os.IsNotExist(err) {
			t.Errorf("site %d: record made after the snapshot survived the restore (%v)", s.Index, err)
		}
		info, err := os.Stat(filepath.Join(s.StoreDir, "presig", "batch"))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("site %d: restored file mode %v, %v", s.Index, info.Mode(), err)
		}
	}
}

func TestOpenLab_RefusesForeignDirectory(t *testing.T) {
	root := t.TempDir()
	keep := filepath.Join(root, "precious.txt")
	if err := os.WriteFile(keep, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenLab(t.Context(), root, "/nonexistent/kqbenchparty", 1)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("OpenLab on a foreign directory: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("OpenLab removed what it did not own: %v", err)
	}
}
