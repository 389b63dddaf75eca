package hsmshare

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

const testParty = "party-a"

// storeFixture is a token, a seal key and a store in a temp dir.
type storeFixture struct {
	tok *testToken
	tk  *Token
	key *SealKey
	dir string
	st  *Store
}

func newStoreFixture(t *testing.T, im impl, scheme Scheme) *storeFixture {
	t.Helper()
	f := &storeFixture{tok: im.newToken(t)}
	f.tk = openToken(t, f.tok, withScheme(scheme))
	var err error
	if f.key, err = f.tk.CreateSealKey(context.Background(), "seal"); err != nil {
		t.Fatal(err)
	}
	f.dir = filepath.Join(t.TempDir(), "store")
	f.st = openStore(t, f.dir, f.key, testParty)
	return f
}

// openStore opens a store and closes it when the test ends.
func openStore(t *testing.T, dir string, key *SealKey, party string) *Store {
	t.Helper()
	st, err := OpenStore(dir, key, party)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func mustPut(t *testing.T, st *Store, kind, id string, v uint64, data []byte) {
	t.Helper()
	if err := st.Put(context.Background(), kind, id, v, data); err != nil {
		t.Fatalf("Put %s/%s v%d: %v", kind, id, v, err)
	}
}

func TestStore_RecordLifecycle(t *testing.T) {
	ctx := context.Background()
	forEachProfile(t, func(t *testing.T, im impl, scheme Scheme) {
		st := newStoreFixture(t, im, scheme).st
		mustPut(t, st, "keyshare", "key-1", 1, []byte("v1"))
		mustPut(t, st, "keyshare", "key-1", 3, []byte("v3"))
		mustPut(t, st, "keyshare", "key-1", 2, []byte("v2"))
		mustPut(t, st, "keyshare", "key-2", 0, nil)
		mustPut(t, st, "presignature", "p-1", 1, []byte("p"))

		data, v, err := st.Get(ctx, "keyshare", "key-1")
		if err != nil || v != 3 || string(data) != "v3" {
			t.Fatalf("Get = %q, %d, %v; want v3, 3", data, v, err)
		}
		if data, err := st.GetVersion(ctx, "keyshare", "key-1", 2); err != nil || string(data) != "v2" {
			t.Fatalf("GetVersion 2 = %q, %v", data, err)
		}
		if vs, err := st.Versions(ctx, "keyshare", "key-1"); err != nil || !slices.Equal(vs, []uint64{1, 2, 3}) {
			t.Fatalf("Versions = %v, %v", vs, err)
		}
		if data, v, err := st.Get(ctx, "keyshare", "key-2"); err != nil || v != 0 || len(data) != 0 {
			t.Fatalf("Get empty record = %q, %d, %v", data, v, err)
		}
		if ids, err := st.List(ctx, "keyshare"); err != nil || !slices.Equal(ids, []string{"key-1", "key-2"}) {
			t.Fatalf("List = %v, %v", ids, err)
		}
		// Replacing a version.
		mustPut(t, st, "keyshare", "key-1", 3, []byte("v3b"))
		if data, _ := st.GetVersion(ctx, "keyshare", "key-1", 3); string(data) != "v3b" {
			t.Fatalf("replaced version reads %q", data)
		}
		if err := st.Prune(ctx, "keyshare", "key-1", 3); err != nil {
			t.Fatal(err)
		}
		if vs, _ := st.Versions(ctx, "keyshare", "key-1"); !slices.Equal(vs, []uint64{3}) {
			t.Fatalf("Versions after Prune = %v", vs)
		}
		if err := st.Delete(ctx, "keyshare", "key-1"); err != nil {
			t.Fatal(err)
		}
		if ids, _ := st.List(ctx, "keyshare"); !slices.Equal(ids, []string{"key-2"}) {
			t.Fatalf("List after Delete = %v", ids)
		}
		if _, err := os.Stat(st.recordDir("keyshare", "key-1")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("record directory survives Delete: %v", err)
		}
	})
}

func TestStore_MissingRecordsAreNotExist(t *testing.T) {
	ctx := context.Background()
	st := newStoreFixture(t, softHSM2, SchemeGCM).st
	mustPut(t, st, "keyshare", "present", 5, []byte("x"))
	checks := map[string]error{}
	_, _, checks["Get"] = st.Get(ctx, "keyshare", "absent")
	_, checks["GetVersion"] = st.GetVersion(ctx, "keyshare", "absent", 1)
	_, checks["GetVersion of a missing version"] = st.GetVersion(ctx, "keyshare", "present", 4)
	_, checks["Versions"] = st.Versions(ctx, "keyshare", "absent")
	checks["Delete"] = st.Delete(ctx, "keyshare", "absent")
	checks["Prune"] = st.Prune(ctx, "keyshare", "absent", 1)
	checks["Prune to a missing version"] = st.Prune(ctx, "keyshare", "present", 6)
	for name, err := range checks {
		if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound and fs.ErrNotExist", name, err)
		}
	}
	if ids, err := st.List(ctx, "never-written"); err != nil || len(ids) != 0 {
		t.Errorf("List of an unknown kind = %v, %v", ids, err)
	}
	if err := st.DeleteMany(ctx, "keyshare", []string{"absent", "also-absent"}); err != nil {
		t.Errorf("DeleteMany of missing ids: %v", err)
	}
	if vs, _ := st.Versions(ctx, "keyshare", "present"); !slices.Equal(vs, []uint64{5}) {
		t.Errorf("Prune to a missing version removed something: %v", vs)
	}
}

func TestStore_ValidatesNames(t *testing.T) {
	ctx := context.Background()
	st := newStoreFixture(t, softHSM2, SchemeGCM).st
	bad := []string{"", ".", "..", "Upper", "a/b", "../x", "a b", "é", strings.Repeat("a", 129), "a\x00"}
	for _, name := range bad {
		errs := []error{
			st.Put(ctx, name, "id", 1, nil),
			st.Put(ctx, "kind", name, 1, nil),
			st.Delete(ctx, "kind", name),
			st.DeleteMany(ctx, "kind", []string{"ok", name}),
			st.Prune(ctx, name, "id", 1),
		}
		_, _, e := st.Get(ctx, "kind", name)
		errs = append(errs, e)
		_, e = st.GetVersion(ctx, name, "id", 1)
		errs = append(errs, e)
		_, e = st.Versions(ctx, "kind", name)
		errs = append(errs, e)
		_, e = st.List(ctx, name)
		errs = append(errs, e)
		for i, err := range errs {
			if !errors.Is(err, ErrInvalidName) {
				t.Errorf("name %q, call %d: %v, want ErrInvalidName", name, i, err)
			}
		}
	}
	mustPut(t, st, strings.Repeat("k", 128), "a.b_c-9", 1, nil) // the longest and every allowed byte
}

func TestStore_FilesArePrivateAndLaidOutAsDocumented(t *testing.T) {
	f := newStoreFixture(t, softHSM2, SchemeGCM)
	mustPut(t, f.st, "keyshare", "key-1", 42, []byte("x"))
	want := filepath.Join(f.dir, "records", "keyshare", "key-1", "00000000000000000042.blob")
	if _, err := os.Stat(want); err != nil {
		t.Fatalf("record file not where FORMAT.md says: %v", err)
	}
	err := filepath.WalkDir(f.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		wantMode := fs.FileMode(0o600)
		if d.IsDir() {
			wantMode = 0o700
		}
		if info.Mode().Perm() != wantMode {
			t.Errorf("%s has mode %#o, want %#o", path, info.Mode().Perm(), wantMode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenStore_RefusesSharedDirectory(t *testing.T) {
	f := newStoreFixture(t, softHSM2, SchemeGCM)
	dir := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(dir, f.key, testParty); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("OpenStore on a 0755 directory: %v", err)
	}
	if _, err := OpenStore(t.TempDir(), f.key, "bad party"); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("OpenStore with a bad party: %v", err)
	}
}

// A record file moved or copied to another record, version, kind or party
// fails to open: the file name is not trusted, the sealed header is.
func TestStore_MovedFileFailsToOpen(t *testing.T) {
	ctx := context.Background()
	forEachProfile(t, func(t *testing.T, im impl, scheme Scheme) {
		f := newStoreFixture(t, im, scheme)
		st := f.st
		mustPut(t, st, "keyshare", "key-1", 1, []byte("secret of key-1"))
		mustPut(t, st, "keyshare", "key-2", 1, []byte("secret of key-2"))
		mustPut(t, st, "presignature", "key-1", 1, []byte("presig"))
		src := filepath.Join(st.recordDir("keyshare", "key-1"), versionFile(1))
		blob, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		place := func(kind, id string, v uint64) {
			t.Helper()
			if err := os.WriteFile(filepath.Join(st.recordDir(kind, id), versionFile(v)), blob, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		place("keyshare", "key-2", 2) // another id, newer version
		if _, _, err := st.Get(ctx, "keyshare", "key-2"); !errors.Is(err, ErrTampered) {
			t.Errorf("blob copied to another id: %v, want ErrTampered", err)
		}
		place("keyshare", "key-1", 2) // same id, another version
		if _, err := st.GetVersion(ctx, "keyshare", "key-1", 2); !errors.Is(err, ErrTampered) {
			t.Errorf("blob copied to another version: %v, want ErrTampered", err)
		}
		place("presignature", "key-1", 1) // another kind
		if _, err := st.GetVersion(ctx, "presignature", "key-1", 1); !errors.Is(err, ErrTampered) {
			t.Errorf("blob copied to another kind: %v, want ErrTampered", err)
		}
		// Another party's store under the same seal key.
		other := openStore(t, filepath.Join(t.TempDir(), "b"), f.key, "party-b")
		mustPut(t, other, "keyshare", "key-1", 1, []byte("party b"))
		if err := os.WriteFile(filepath.Join(other.recordDir("keyshare", "key-1"), versionFile(1)), blob, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := other.Get(ctx, "keyshare", "key-1"); !errors.Is(err, ErrTampered) {
			t.Errorf("blob copied to another party's store: %v, want ErrTampered", err)
		}
		// The original is untouched.
		if data, err := st.GetVersion(ctx, "keyshare", "key-1", 1); err != nil || string(data) != "secret of key-1" {
			t.Errorf("original: %q, %v", data, err)
		}
	})
}

func TestStore_CorruptedFileIsReportedAndIsolated(t *testing.T) {
	ctx := context.Background()
	st := newStoreFixture(t, softHSM2, SchemeGCM).st
	for i := range 4 {
		mustPut(t, st, "keyshare", fmt.Sprintf("key-%d", i), 1, []byte(fmt.Sprintf("secret %d", i)))
	}
	path := func(i int) string {
		return filepath.Join(st.recordDir("keyshare", fmt.Sprintf("key-%d", i)), versionFile(1))
	}
	blob, _ := os.ReadFile(path(0))
	damage := map[int][]byte{
		0: blob[:len(blob)/2],                         // truncated
		1: []byte("this is not a sealed blob at all"), // garbled
		2: {},                                         // empty
	}
	for i, b := range damage {
		if err := os.WriteFile(path(i), b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := st.Get(ctx, "keyshare", fmt.Sprintf("key-%d", i))
		if !errors.Is(err, ErrCorrupted) || !strings.Contains(err.Error(), path(i)) {
			t.Errorf("damaged file %d: %v, want ErrCorrupted naming %s", i, err, path(i))
		}
	}
	if data, _, err := st.Get(ctx, "keyshare", "key-3"); err != nil || string(data) != "secret 3" {
		t.Fatalf("undamaged record: %q, %v", data, err)
	}
	if ids, err := st.List(ctx, "keyshare"); err != nil || len(ids) != 4 {
		t.Fatalf("List with damaged records: %v, %v", ids, err)
	}
}

func TestStore_PruneKeepsOldVersionsWhenNewOneIsBad(t *testing.T) {
	ctx := context.Background()
	st := newStoreFixture(t, softHSM2, SchemeGCM).st
	mustPut(t, st, "keyshare", "k", 1, []byte("good old"))
	mustPut(t, st, "keyshare", "k", 2, []byte("new"))
	if err := os.WriteFile(filepath.Join(st.recordDir("keyshare", "k"), versionFile(2)), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := st.Prune(ctx, "keyshare", "k", 2); !errors.Is(err, ErrCorrupted) {
		t.Fatalf("Prune to a corrupted version: %v, want ErrCorrupted", err)
	}
	if data, err := st.GetVersion(ctx, "keyshare", "k", 1); err != nil || string(data) != "good old" {
		t.Fatalf("old version after refused Prune: %q, %v", data, err)
	}
}

func TestStore_StaleTempFilesAreIgnoredAndCleaned(t *testing.T) {
	ctx := context.Background()
	f := newStoreFixture(t, softHSM2, SchemeGCM)
	mustPut(t, f.st, "keyshare", "k", 1, []byte("v1"))
	rdir := f.st.recordDir("keyshare", "k")
	stale := filepath.Join(rdir, ".tmp-123456")
	if err := os.WriteFile(stale, []byte("half a blob"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyRecord := f.st.recordDir("keyshare", "only-temp")
	if err := os.Mkdir(emptyRecord, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(emptyRecord, ".tmp-9"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if vs, err := f.st.Versions(ctx, "keyshare", "k"); err != nil || !slices.Equal(vs, []uint64{1}) {
		t.Fatalf("Versions with a stale temp file = %v, %v", vs, err)
	}
	if ids, _ := f.st.List(ctx, "keyshare"); !slices.Equal(ids, []string{"k"}) {
		t.Fatalf("List with a temp-only record = %v", ids)
	}
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, f.dir, f.key, testParty)
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stale temp file survives reopening: %v", err)
	}
	if _, err := os.Stat(emptyRecord); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("empty record directory survives reopening: %v", err)
	}
	if data, _, err := st.Get(ctx, "keyshare", "k"); err != nil || string(data) != "v1" {
		t.Fatalf("Get after cleaning: %q, %v", data, err)
	}
}

// TestStore_CrashBetweenTempWriteAndRename kills a second process right
// after it wrote and synced the temp file of version 2, before the rename.
func TestStore_CrashBetweenTempWriteAndRename(t *testing.T) {
	forEachImpl(t, testStoreCrashBetweenTempWriteAndRename)
}

func testStoreCrashBetweenTempWriteAndRename(t *testing.T, im impl) {
	ctx := context.Background()
	f := newStoreFixture(t, im, SchemeGCM)
	mustPut(t, f.st, "keyshare", "k1", 1, []byte("version one"))
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	code, out := child{role: "crash-before-rename", tok: f.tok, env: map[string]string{
		"HSMSHARE_CHILD_KEY": "seal", "HSMSHARE_CHILD_STORE": f.dir,
	}}.run(t)
	if code != childCrashed {
		t.Fatalf("child exited %d, want %d (crashed at the hook): %s", code, childCrashed, out)
	}
	temps, _ := filepath.Glob(filepath.Join(f.dir, "records", "keyshare", "k1", ".tmp-*"))
	if len(temps) != 1 {
		t.Fatalf("the crash left %d temp files, want 1", len(temps))
	}
	st := openStore(t, f.dir, f.key, testParty)
	data, v, err := st.Get(ctx, "keyshare", "k1")
	if err != nil || v != 1 || string(data) != "version one" {
		t.Fatalf("after the crash Get = %q, %d, %v; want the previous version", data, v, err)
	}
	if _, err := os.Stat(temps[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temp file of the crashed write survives reopening")
	}
}

func TestStore_SecondProcessIsLockedOut(t *testing.T) {
	forEachImpl(t, testStoreSecondProcessIsLockedOut)
}

func testStoreSecondProcessIsLockedOut(t *testing.T, im impl) {
	ctx := context.Background()
	f := newStoreFixture(t, im, SchemeGCM)
	c := child{role: "lock", tok: f.tok, env: map[string]string{"HSMSHARE_CHILD_KEY": "seal", "HSMSHARE_CHILD_STORE": f.dir}}
	if code, out := c.run(t); code != childLocked {
		t.Fatalf("child opened a store this process holds: exit %d: %s", code, out)
	}
	// A second Store in this process is locked out too.
	if _, err := OpenStore(f.dir, f.key, testParty); !errors.Is(err, ErrStoreLocked) || !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Fatalf("second OpenStore in-process: %v, want ErrStoreLocked naming this process", err)
	}
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	if code, out := c.run(t); code != childOK {
		t.Fatalf("child could not use the store after it was closed: exit %d: %s", code, out)
	}
	st := openStore(t, f.dir, f.key, testParty)
	if data, _, err := st.Get(ctx, "keyshare", "from-child"); err != nil || string(data) != "written by the child" {
		t.Fatalf("record written by the child: %q, %v", data, err)
	}
}

func TestStore_NoPlaintextOnDisk(t *testing.T) {
	ctx := context.Background()
	forEachProfile(t, func(t *testing.T, im impl, scheme Scheme) {
		f := newStoreFixture(t, im, scheme)
		var secrets [][]byte
		for i := range 8 {
			s := append([]byte(fmt.Sprintf("PLAINTEXT-MARKER-%d-", i)), randBytes(200)...)
			secrets = append(secrets, s)
			mustPut(t, f.st, "keyshare", fmt.Sprintf("k%d", i), uint64(i), s)
		}
		rotated, err := f.tk.CreateSealKey(ctx, "seal-2")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.st.Rotate(ctx, rotated); err != nil {
			t.Fatal(err)
		}
		files := 0
		err = filepath.WalkDir(f.dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			files++
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, s := range secrets {
				// Any 8-byte window of a secret would be a leak.
				for i := 0; i+8 <= len(s); i += 4 {
					if bytes.Contains(b, s[i:i+8]) {
						t.Errorf("%s contains plaintext bytes %d..%d of a secret", path, i, i+8)
						return nil
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if files < len(secrets) {
			t.Fatalf("walked %d files, want at least %d", files, len(secrets))
		}
	})
}

func TestStore_32GoroutinesAtOnce(t *testing.T) {
	forEachImpl(t, testStore32GoroutinesAtOnce)
}

func testStore32GoroutinesAtOnce(t *testing.T, im impl) {
	ctx := context.Background()
	st := newStoreFixture(t, im, SchemeGCM).st
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			id := fmt.Sprintf("k%d", g%8) // four goroutines share each record
			for i := range 5 {
				v := uint64(g*100 + i)
				data := []byte(fmt.Sprintf("g%d-%d", g, i))
				if err := st.Put(ctx, "keyshare", id, v, data); err != nil {
					t.Errorf("Put: %v", err)
					return
				}
				got, err := st.GetVersion(ctx, "keyshare", id, v)
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("GetVersion: %q, %v", got, err)
					return
				}
				if _, _, err := st.Get(ctx, "keyshare", id); err != nil {
					t.Errorf("Get: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	ids, err := st.List(ctx, "keyshare")
	if err != nil || len(ids) != 8 {
		t.Fatalf("List = %v, %v", ids, err)
	}
	for _, id := range ids {
		if vs, _ := st.Versions(ctx, "keyshare", id); len(vs) != 20 {
			t.Fatalf("%s has %d versions, want 20", id, len(vs))
		}
	}
}

func TestStore_DeleteMany(t *testing.T) {
	ctx := context.Background()
	st := newStoreFixture(t, softHSM2, SchemeGCM).st
	for i := range 6 {
		mustPut(t, st, "presignature", fmt.Sprintf("p%d", i), 1, []byte("x"))
		mustPut(t, st, "presignature", fmt.Sprintf("p%d", i), 2, []byte("y"))
	}
	if err := st.DeleteMany(ctx, "presignature", []string{"p0", "p2", "p4", "missing"}); err != nil {
		t.Fatal(err)
	}
	if ids, _ := st.List(ctx, "presignature"); !slices.Equal(ids, []string{"p1", "p3", "p5"}) {
		t.Fatalf("List after DeleteMany = %v", ids)
	}
	if err := st.DeleteMany(ctx, "presignature", []string{"p0", "p2"}); err != nil {
		t.Fatalf("repeating DeleteMany: %v", err)
	}
}

func TestStore_UseAfterClose(t *testing.T) {
	ctx := context.Background()
	st := newStoreFixture(t, softHSM2, SchemeGCM).st
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := st.Put(ctx, "k", "i", 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v, want ErrClosed", err)
	}
}

func TestOpenStore_RefusesAnotherSealKey(t *testing.T) {
	forEachImpl(t, testOpenStoreRefusesAnotherSealKey)
}

func testOpenStoreRefusesAnotherSealKey(t *testing.T, im impl) {
	ctx := context.Background()
	f := newStoreFixture(t, im, SchemeGCM)
	mustPut(t, f.st, "keyshare", "k", 1, []byte("x"))
	other, err := f.tk.CreateSealKey(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(f.dir, other, testParty); !errors.Is(err, ErrWrongSealKey) {
		t.Fatalf("OpenStore with another seal key: %v, want ErrWrongSealKey", err)
	}
	openStore(t, f.dir, f.key, testParty) // the right key still opens it
}
