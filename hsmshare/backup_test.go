package hsmshare

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// backupFixture fills a store with key shares in two versions, a node
// record and a presignature batch, and backs it up leaving the batches out.
func backupFixture(t *testing.T, f *storeFixture) []byte {
	t.Helper()
	mustPut(t, f.st, "share", "key-1", 1, []byte("share epoch 1"))
	mustPut(t, f.st, "share", "key-1", 2, []byte("share epoch 2"))
	mustPut(t, f.st, "share", "key-2", 1, []byte("another key"))
	mustPut(t, f.st, "node", "pools", 1, []byte("pool list"))
	mustPut(t, f.st, "presig", "pool.batch", 1, []byte("presignatures"))
	var buf bytes.Buffer
	info, err := f.st.Backup(context.Background(), &buf, BackupOptions{Exclude: []string{"presig"},
		Files: map[string][]byte{"config.json": []byte(`{"version":1}`)}})
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	want := []RecordRef{{"node", "pools", 1}, {"share", "key-1", 1}, {"share", "key-1", 2}, {"share", "key-2", 1}}
	if !slices.Equal(info.Records, want) || info.Party != testParty || info.SealKeyID != f.key.ID() || !slices.Equal(info.Excluded, []string{"presig"}) {
		t.Fatalf("Backup info %+v; want records %v of %s under %s, presig excluded", info, want, testParty, f.key.ID())
	}
	return buf.Bytes()
}

// recordFiles lists the record files under a store directory.
func recordFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dir, recordsDir)
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readBackup(t *testing.T, data []byte) *Backup {
	t.Helper()
	b, err := ReadBackup(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("ReadBackup: %v", err)
	}
	return b
}

func TestBackup_RoundTripRestoresTheSealedRecords(t *testing.T) {
	ctx := context.Background()
	forEachImpl(t, func(t *testing.T, im impl) {
		f := newStoreFixture(t, im, SchemeGCM)
		data := backupFixture(t, f)
		b := readBackup(t, data)
		if cfg, ok := b.File("config.json"); !ok || string(cfg) != `{"version":1}` {
			t.Fatalf("backup file config.json = %q, %v", cfg, ok)
		}
		if bytes.Contains(data, []byte("share epoch")) {
			t.Fatal("the backup holds a record in plaintext")
		}

		dir := filepath.Join(t.TempDir(), "restored")
		res, err := RestoreStore(ctx, dir, f.key, testParty, b, RestoreOptions{Refuse: []string{"presig"}})
		if err != nil {
			t.Fatalf("RestoreStore: %v", err)
		}
		if res.Restored != 4 || res.Replaced != 0 || res.Kept != 0 {
			t.Fatalf("RestoreStore = %+v; want 4 restored", res)
		}
		// The blobs are the stored ones, byte for byte, still sealed.
		for _, rel := range recordFiles(t, dir) {
			got, _ := os.ReadFile(filepath.Join(dir, recordsDir, rel))
			orig, err := os.ReadFile(filepath.Join(f.dir, recordsDir, rel))
			if err != nil || !bytes.Equal(got, orig) {
				t.Fatalf("restored %s differs from the original (%v)", rel, err)
			}
		}
		st := openStore(t, dir, f.key, testParty)
		if d, v, err := st.Get(ctx, "share", "key-1"); err != nil || v != 2 || string(d) != "share epoch 2" {
			t.Fatalf("restored share = %q v%d, %v", d, v, err)
		}
		if d, err := st.GetVersion(ctx, "share", "key-1", 1); err != nil || string(d) != "share epoch 1" {
			t.Fatalf("restored share epoch 1 = %q, %v", d, err)
		}
		if ids, err := st.List(ctx, "presig"); err != nil || len(ids) != 0 {
			t.Fatalf("presignature records after a restore: %v, %v; want none", ids, err)
		}
		if label, err := StoreSealKeyLabel(dir); err != nil || label != f.key.Label() {
			t.Fatalf("restored sealkey.json names %q, %v; want %q", label, err, f.key.Label())
		}
	})
}

func TestRestore_RefusesABackupFromAnotherToken(t *testing.T) {
	ctx := context.Background()
	forEachImpl(t, func(t *testing.T, im impl) {
		toks := im.newTokens(t, 2)
		tkA, tkB := openToken(t, toks[0]), openToken(t, toks[1])
		keyA, err := tkA.CreateSealKey(ctx, "seal")
		if err != nil {
			t.Fatal(err)
		}
		keyB, err := tkB.CreateSealKey(ctx, "seal")
		if err != nil {
			t.Fatal(err)
		}
		f := &storeFixture{key: keyA, dir: filepath.Join(t.TempDir(), "a")}
		f.st = openStore(t, f.dir, keyA, testParty)
		b := readBackup(t, backupFixture(t, f))

		dir := filepath.Join(t.TempDir(), "b")
		_, err = RestoreStore(ctx, dir, keyB, testParty, b, RestoreOptions{})
		if !errors.Is(err, ErrWrongSealKey) || !strings.Contains(err.Error(), "node/pools version 1") {
			t.Fatalf("restore onto another token: %v; want ErrWrongSealKey naming the first record", err)
		}
		if files := recordFiles(t, dir); len(files) != 0 {
			t.Fatalf("a refused restore wrote %v", files)
		}
		if _, err := os.Stat(filepath.Join(dir, keyInfoName)); !os.IsNotExist(err) {
			t.Fatalf("a refused restore wrote %s (%v)", keyInfoName, err)
		}
	})
}

// rewriteBackup rebuilds a backup through edit (which may rename, change
// or drop entries, or add some after it) and recomputes end.json, so a
// test reaches the checks behind the digest.
func rewriteBackup(t *testing.T, data []byte, edit func(hdr *tar.Header, content []byte) []byte, extra ...*tar.Header) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	d := newBackupDigest()
	n := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		content, _ := io.ReadAll(tr)
		if hdr.Name == backupEndName {
			for _, h := range extra {
				writeEntry(t, tw, h, nil)
				d.add(h.Name, nil)
				n++
			}
			end, _ := json.Marshal(backupEnd{Entries: n, SHA256: d.sum()})
			writeEntry(t, tw, &tar.Header{Name: backupEndName, Typeflag: tar.TypeReg, Mode: 0o600}, end)
			continue
		}
		content = edit(hdr, content)
		if content == nil {
			continue
		}
		writeEntry(t, tw, hdr, content)
		d.add(hdr.Name, content)
		n++
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func writeEntry(t *testing.T, tw *tar.Writer, hdr *tar.Header, content []byte) {
	t.Helper()
	hdr.Size = int64(len(content))
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
}

func TestReadBackup_RefusesDamagedAndHostileBackups(t *testing.T) {
	ctx := context.Background()
	f := newStoreFixture(t, softHSM2, SchemeGCM)
	data := backupFixture(t, f)
	keep := func(_ *tar.Header, c []byte) []byte { return c }
	flipInBlob := func(data []byte) []byte {
		i := bytes.LastIndex(data, []byte("KQSB")) + 60
		out := bytes.Clone(data)
		out[i] ^= 1
		return out
	}
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"Empty", nil, ErrBadBackup},
		{"CutInTheMiddle", data[:len(data)/2], ErrBadBackup},
		{"CutInsideTheEndHeader", data[:bytes.LastIndex(data, []byte(backupEndName))+10], ErrBadBackup},
		{"CutBeforeTheEnd", data[:bytes.LastIndex(data, []byte(backupEndName))], ErrBadBackup},
		{"ByteFlippedInABlob", flipInBlob(data), ErrBadBackup},
		{"RecordDropped", rewriteBackup(t, data, func(h *tar.Header, c []byte) []byte {
			if strings.Contains(h.Name, "key-2") {
				return nil
			}
			return c
		}), ErrBadBackup},
		{"PathTraversal", rewriteBackup(t, data, func(h *tar.Header, c []byte) []byte {
			if strings.Contains(h.Name, "key-2") {
				h.Name = "records/share/../../../etc/" + versionFile(1)
			}
			return c
		}), ErrBadBackup},
		{"AbsoluteName", rewriteBackup(t, data, func(h *tar.Header, c []byte) []byte {
			if strings.Contains(h.Name, "key-2") {
				h.Name = "/records/share/key-2/" + versionFile(1)
			}
			return c
		}), ErrBadBackup},
		{"Symlink", rewriteBackup(t, data, func(h *tar.Header, c []byte) []byte {
			if strings.Contains(h.Name, "key-2") {
				h.Typeflag, h.Linkname = tar.TypeSymlink, "/etc/passwd"
				return []byte{}
			}
			return c
		}), ErrBadBackup},
		{"UnknownEntry", rewriteBackup(t, data, keep, &tar.Header{Name: "notes.txt", Typeflag: tar.TypeReg, Mode: 0o600}), ErrBadBackup},
		{"BlobMovedToAnotherRecord", rewriteBackup(t, data, func(h *tar.Header, c []byte) []byte {
			if strings.Contains(h.Name, "key-2") {
				h.Name = "records/share/key-3/" + versionFile(1)
			}
			return c
		}), ErrTampered},
		{"HugeManifest", rewriteBackup(t, data, func(h *tar.Header, c []byte) []byte {
			if h.Name == backupManifestName {
				return append(c, bytes.Repeat([]byte(" "), maxBackupMetaSize)...)
			}
			return c
		}), ErrBadBackup},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadBackup(bytes.NewReader(tc.data))
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrBadBackup) {
				t.Fatalf("ReadBackup: %v; want %v", err, tc.want)
			}
		})
	}

	// A blob damaged inside (its digest recomputed) parses but does not
	// open: refused by the token, with nothing written.
	damaged := rewriteBackup(t, data, func(h *tar.Header, c []byte) []byte {
		if strings.Contains(h.Name, "key-2") {
			c = bytes.Clone(c)
			c[len(c)-1] ^= 1
		}
		return c
	})
	b := readBackup(t, damaged)
	dir := filepath.Join(t.TempDir(), "restored")
	_, err := RestoreStore(ctx, dir, f.key, testParty, b, RestoreOptions{})
	if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "share/key-2 version 1") {
		t.Fatalf("restore of a damaged blob: %v; want ErrTampered naming share/key-2", err)
	}
	if files := recordFiles(t, dir); len(files) != 0 {
		t.Fatalf("a refused restore wrote %v", files)
	}
}

func TestRestore_NeverRestoresPresignatures(t *testing.T) {
	ctx := context.Background()
	f := newStoreFixture(t, softHSM2, SchemeGCM)
	mustPut(t, f.st, "share", "key-1", 1, []byte("share"))
	mustPut(t, f.st, "presig", "pool.batch", 1, []byte("presignatures"))
	var buf bytes.Buffer
	if _, err := f.st.Backup(ctx, &buf, BackupOptions{}); err != nil { // presignatures not left out
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	_, err := RestoreStore(ctx, dir, f.key, testParty, readBackup(t, buf.Bytes()), RestoreOptions{Refuse: []string{"presig"}})
	if !errors.Is(err, ErrBadBackup) || !strings.Contains(err.Error(), "presig/pool.batch") {
		t.Fatalf("restore of a backup with presignatures: %v; want ErrBadBackup naming the record", err)
	}
	if files := recordFiles(t, dir); len(files) != 0 {
		t.Fatalf("a refused restore wrote %v", files)
	}
}

func TestRestore_RefusesAStoreInUse(t *testing.T) {
	f := newStoreFixture(t, softHSM2, SchemeGCM)
	b := readBackup(t, backupFixture(t, f))
	// f.st holds the store's lock: it stands for the running site.
	_, err := RestoreStore(context.Background(), f.dir, f.key, testParty, b, RestoreOptions{Replace: true})
	if !errors.Is(err, ErrStoreLocked) {
		t.Fatalf("restore into an open store: %v; want ErrStoreLocked", err)
	}
}

func TestRestore_NonEmptyStoreNeedsReplaceAndKeepsNewerVersions(t *testing.T) {
	ctx := context.Background()
	f := newStoreFixture(t, softHSM2, SchemeGCM)
	b := readBackup(t, backupFixture(t, f))
	// After the backup: a newer epoch of key-1, and a damaged epoch 1.
	mustPut(t, f.st, "share", "key-1", 3, []byte("share epoch 3"))
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	v1 := filepath.Join(f.dir, recordsDir, "share", "key-1", versionFile(1))
	if err := os.WriteFile(v1, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}

	_, err := RestoreStore(ctx, f.dir, f.key, testParty, b, RestoreOptions{})
	if !errors.Is(err, ErrRestoreConflict) {
		t.Fatalf("restore into a store with records: %v; want ErrRestoreConflict", err)
	}
	res, err := RestoreStore(ctx, f.dir, f.key, testParty, b, RestoreOptions{Replace: true, Refuse: []string{"presig"}})
	if err != nil {
		t.Fatalf("restore with Replace: %v", err)
	}
	if res.Restored != 4 || res.Replaced != 4 || res.Kept != 1 || !slices.Equal(res.Newer, []RecordRef{{"share", "key-1", 3}}) {
		t.Fatalf("restore with Replace = %+v; want 4 restored (all replaced), epoch 3 kept as newer", res)
	}
	st := openStore(t, f.dir, f.key, testParty)
	if d, v, err := st.Get(ctx, "share", "key-1"); err != nil || v != 3 || string(d) != "share epoch 3" {
		t.Fatalf("after the restore the newest share is %q v%d, %v; want epoch 3 kept", d, v, err)
	}
	if d, err := st.GetVersion(ctx, "share", "key-1", 1); err != nil || string(d) != "share epoch 1" {
		t.Fatalf("damaged epoch 1 after the restore: %q, %v; want it repaired", d, err)
	}
	if ids, _ := st.List(ctx, "presig"); !slices.Equal(ids, []string{"pool.batch"}) {
		t.Fatalf("presignature records after a restore with Replace: %v; want the store's own left alone", ids)
	}
}

func TestBackup_RefusesAnUnfinishedRotation(t *testing.T) {
	ctx := context.Background()
	f := newStoreFixture(t, softHSM2, SchemeGCM)
	mustPut(t, f.st, "share", "key-1", 1, []byte("share"))
	next, err := f.tk.CreateSealKey(ctx, "seal.2")
	if err != nil {
		t.Fatal(err)
	}
	f.st.hooks.rotate = func(step string, _ int) error {
		if step == stepJournal {
			return errors.New("stop")
		}
		return nil
	}
	if err := f.st.Rotate(ctx, next); err == nil {
		t.Fatal("rotation did not stop at the hook")
	}
	var buf bytes.Buffer
	if _, err := f.st.Backup(ctx, &buf, BackupOptions{}); err == nil || !strings.Contains(err.Error(), "unfinished") {
		t.Fatalf("backup during a rotation: %v; want a refusal", err)
	}
}

func FuzzReadBackup(f *testing.F) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	m, _ := json.Marshal(backupManifest{Format: backupFormat, Type: backupType, Party: testParty,
		SealKey: keyInfo{Format: 1, Label: "seal", ID: "00"}, Files: []string{"a"}, Records: 1})
	for _, e := range []struct {
		name string
		data []byte
	}{{backupManifestName, m}, {"files/a", []byte("x")}, {"records/share/k/" + versionFile(1), []byte("KQSB\x01")}, {backupEndName, []byte(`{}`)}} {
		_ = tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Size: int64(len(e.data)), Mode: 0o600})
		_, _ = tw.Write(e.data)
	}
	_ = tw.Close()
	f.Add(buf.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ReadBackup(bytes.NewReader(data))
		if err == nil && b == nil {
			t.Fatal("nil backup without an error")
		}
		if err != nil && !errors.Is(err, ErrBadBackup) {
			t.Fatalf("ReadBackup error %v does not wrap ErrBadBackup", err)
		}
	})
}
