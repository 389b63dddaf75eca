package hsmshare

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"
)

func TestLedgerMarksSurviveStoreRestore(t *testing.T) {
	forEachImpl(t, testLedgerMarksSurviveStoreRestore)
}

func testLedgerMarksSurviveStoreRestore(t *testing.T, im impl) {
	// The attack the ledger exists for: an operator copies the store,
	// the site uses a slot, the copy is put back. The token still says
	// the slot is used.
	ctx := context.Background()
	f := newStoreFixture(t, im, SchemeGCM)
	if err := f.st.CreateLedger(ctx, "batch-1", 4); err != nil {
		t.Fatal(err)
	}
	mustPut(t, f.st, "presig", "batch-1", 1, []byte("four presignatures"))
	backup := filepath.Join(t.TempDir(), "backup")
	if out, err := exec.Command("cp", "-a", f.dir, backup).CombinedOutput(); err != nil {
		t.Fatalf("copy store: %v: %s", err, out)
	}
	if left, err := f.st.UseLedger(ctx, "batch-1", []int{0}); err != nil || left != 3 {
		t.Fatalf("UseLedger = %d, %v; want 3 left", left, err)
	}
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(f.dir); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", backup, f.dir).CombinedOutput(); err != nil {
		t.Fatalf("restore store: %v: %s", err, out)
	}
	st := openStore(t, f.dir, f.key, testParty)
	if _, _, err := st.Get(ctx, "presig", "batch-1"); err != nil {
		t.Fatalf("the restored record should open: %v", err)
	}
	used, err := st.LedgerUsed(ctx, "batch-1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(used, []bool{true, false, false, false}) {
		t.Fatalf("after restore used = %v; slot 0 must stay used", used)
	}
	if _, err := st.UseLedger(ctx, "batch-1", []int{0}); !errors.Is(err, ErrSlotUsed) {
		t.Fatalf("reusing slot 0 after restore: err = %v, want ErrSlotUsed", err)
	}
}

func TestLedgerUseAllOrNothing(t *testing.T) {
	forEachImpl(t, testLedgerUseAllOrNothing)
}

func testLedgerUseAllOrNothing(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t))
	l, err := tk.CreateLedger(ctx, "party/b", 10)
	if err != nil {
		t.Fatal(err)
	}
	if left, err := l.Use(ctx, []int{3, 9}); err != nil || left != 8 {
		t.Fatalf("Use = %d, %v", left, err)
	}
	// 9 is used: 1 and 2 must not be marked either.
	if _, err := l.Use(ctx, []int{1, 2, 9}); !errors.Is(err, ErrSlotUsed) {
		t.Fatalf("err = %v, want ErrSlotUsed", err)
	}
	if _, err := l.Use(ctx, []int{4, 10}); err == nil || !strings.Contains(err.Error(), "no slot 10") {
		t.Fatalf("out-of-range slot: err = %v", err)
	}
	if _, err := l.Use(ctx, []int{-1}); err == nil {
		t.Fatal("negative slot accepted")
	}
	used, err := l.Used(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]bool, 10)
	want[3], want[9] = true, true
	if !slices.Equal(used, want) {
		t.Fatalf("used = %v, want %v", used, want)
	}
	// A second handle (as after a restart) sees the same marks.
	l2, err := tk.Ledger(ctx, "party/b")
	if err != nil {
		t.Fatal(err)
	}
	if l2.Slots() != 10 {
		t.Fatalf("Slots = %d", l2.Slots())
	}
	if used2, _ := l2.Used(ctx); !slices.Equal(used2, want) {
		t.Fatalf("second handle used = %v", used2)
	}
	left, err := l2.Use(ctx, []int{0, 1, 2, 4, 5, 6, 7, 8})
	if err != nil || left != 0 {
		t.Fatalf("use the rest: %d, %v", left, err)
	}
}

func TestLedgerLifecycle(t *testing.T) {
	forEachImpl(t, testLedgerLifecycle)
}

func testLedgerLifecycle(t *testing.T, im impl) {
	ctx := context.Background()
	f := newStoreFixture(t, im, SchemeGCM)
	if err := f.st.CreateLedger(ctx, "x", 0); err == nil {
		t.Fatal("0 slots accepted")
	}
	if err := f.st.CreateLedger(ctx, "x", MaxLedgerSlots+1); err == nil {
		t.Fatal("too many slots accepted")
	}
	if err := f.st.CreateLedger(ctx, "../x", 3); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("bad name: %v", err)
	}
	for _, n := range []string{"b", "a", "c"} {
		if err := f.st.CreateLedger(ctx, n, MaxLedgerSlots); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.st.CreateLedger(ctx, "a", 3); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("duplicate: %v", err)
	}
	// Another party's ledgers on the same token are not this store's.
	other := openStore(t, filepath.Join(t.TempDir(), "other"), f.key, "party-b")
	if err := other.CreateLedger(ctx, "a", 1); err != nil {
		t.Fatal(err)
	}
	names, err := f.st.Ledgers(ctx)
	if err != nil || !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Fatalf("Ledgers = %v, %v", names, err)
	}
	if _, err := f.st.UseLedger(ctx, "a", []int{63}); err != nil {
		t.Fatal(err)
	}
	if used, _ := other.LedgerUsed(ctx, "a"); slices.Contains(used, true) {
		t.Fatal("marking party-a's ledger marked party-b's")
	}
	if err := f.st.DeleteLedger(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := f.st.DeleteLedger(ctx, "b"); err != nil {
		t.Fatalf("deleting a missing ledger: %v", err)
	}
	if _, err := f.st.LedgerUsed(ctx, "b"); !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrLedgerNotFound) {
		t.Fatalf("LedgerUsed of a deleted ledger: %v", err)
	}
	if _, err := f.st.UseLedger(ctx, "b", []int{0}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("UseLedger of a deleted ledger: %v", err)
	}
	// A ledger destroyed behind the store's cached handle reads as missing.
	l, err := f.tk.Ledger(ctx, testParty+"/c")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.LedgerUsed(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := l.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.UseLedger(ctx, "c", []int{0}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("UseLedger after the object was destroyed: %v", err)
	}
	// Objects stay private: not visible without login. (pkcs11-tool has
	// no way to pass NSS softoken its initialization arguments.)
	if f.tok.soft == nil {
		return
	}
	cmd := exec.Command("pkcs11-tool", "--module", f.tok.cfg.ModulePath, "--token-label", f.tok.Label, "--list-objects")
	cmd.Env = append(os.Environ(), f.tok.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool: %v: %s", err, out)
	}
	if strings.Contains(string(out), "kql ") {
		t.Fatalf("ledger visible without login:\n%s", out)
	}
}

func TestLedgerConcurrentUseMarksEachSlotOnce(t *testing.T) {
	forEachImpl(t, testLedgerConcurrentUseMarksEachSlotOnce)
}

func testLedgerConcurrentUseMarksEachSlotOnce(t *testing.T, im impl) {
	ctx := context.Background()
	f := newStoreFixture(t, im, SchemeGCM)
	if err := f.st.CreateLedger(ctx, "race", 16); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := make(map[int]int)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := 0; s < 16; s++ {
				if _, err := f.st.UseLedger(ctx, "race", []int{s}); err == nil {
					mu.Lock()
					wins[s]++
					mu.Unlock()
				} else if !errors.Is(err, ErrSlotUsed) {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for s := 0; s < 16; s++ {
		if wins[s] != 1 {
			t.Fatalf("slot %d was marked %d times", s, wins[s])
		}
	}
}

func TestLedgerLabelTamperingDetected(t *testing.T) {
	forEachImpl(t, testLedgerLabelTamperingDetected)
}

func testLedgerLabelTamperingDetected(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t))
	l, err := tk.CreateLedger(ctx, "p/t", 12)
	if err != nil {
		t.Fatal(err)
	}
	for _, label := range []string{"", "kql 12", "kql 13 0000", "kql 12 00", "kql 12 zz00", "kql 12 00f0", "kql 65 0000000000000000ff", "xyz 12 0000"} {
		err := tk.pool.with(ctx, func(sh pkcs11.SessionHandle) error {
			return tk.mod.ctx.SetAttributeValue(sh, l.obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)})
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Used(ctx); !errors.Is(err, ErrLedgerCorrupted) {
			t.Errorf("label %q: err = %v, want ErrLedgerCorrupted", label, err)
		}
		if _, err := l.Use(ctx, []int{0}); !errors.Is(err, ErrLedgerCorrupted) {
			t.Errorf("label %q: Use err = %v, want ErrLedgerCorrupted", label, err)
		}
	}
}

func TestRemovedRecordsAreOverwritten(t *testing.T) {
	// A second hard link to a version file shares its blocks: after the
	// record is deleted, what the link shows is what the deletion left.
	ctx := context.Background()
	f := newStoreFixture(t, softHSM2, SchemeGCM)
	secret := []byte(strings.Repeat("presignature k and sigma ", 40))
	mustPut(t, f.st, "presig", "p1", 1, secret)
	mustPut(t, f.st, "keyshare", "k1", 1, secret)
	mustPut(t, f.st, "keyshare", "k1", 2, secret)
	link := func(kind, id string, v uint64) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), "link")
		if err := os.Link(filepath.Join(f.dir, "records", kind, id, versionFile(v)), p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	l1 := link("presig", "p1", 1)
	l2 := link("keyshare", "k1", 1)
	if err := f.st.Delete(ctx, "presig", "p1"); err != nil {
		t.Fatal(err)
	}
	if err := f.st.Prune(ctx, "keyshare", "k1", 2); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{l1, l2} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 || strings.Trim(string(b), "\x00") != "" {
			t.Fatalf("deleted blob %s still holds data (%d bytes)", p, len(b))
		}
	}
}

// A ledger is a private AES key that can do nothing, named by its CKA_ID,
// and its marks are kept by the token: they outlive the module (closed and
// initialized again, as at a restart). NSS softoken refused the earlier
// form, a private token data object (CKR_ATTRIBUTE_VALUE_INVALID).
func TestLedger_KeyObjectKeepsMarksAcrossRestart(t *testing.T) {
	forEachImpl(t, testLedgerKeyObjectKeepsMarksAcrossRestart)
}

func testLedgerKeyObjectKeepsMarksAcrossRestart(t *testing.T, im impl) {
	ctx := context.Background()
	tok := im.newToken(t)
	tk, err := Open(ctx, tok.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tk.Close() })
	l, err := tk.CreateLedger(ctx, "party/batch", 20)
	if err != nil {
		t.Fatalf("CreateLedger on %s: %v", im.name, err)
	}
	a := rawAttrs(t, tk, l.obj, pkcs11.CKA_CLASS, pkcs11.CKA_KEY_TYPE, pkcs11.CKA_ID, pkcs11.CKA_LABEL)
	class, _ := ulongFromBytes(a[pkcs11.CKA_CLASS])
	kt, _ := ulongFromBytes(a[pkcs11.CKA_KEY_TYPE])
	if class != pkcs11.CKO_SECRET_KEY || kt != pkcs11.CKK_AES || string(a[pkcs11.CKA_ID]) != "kq-ledger:party/batch" || string(a[pkcs11.CKA_LABEL]) != "kql 20 000000" {
		t.Fatalf("ledger object: class %#x type %#x id %q label %q", class, kt, a[pkcs11.CKA_ID], a[pkcs11.CKA_LABEL])
	}
	want := map[uint]bool{
		pkcs11.CKA_TOKEN: true, pkcs11.CKA_PRIVATE: true, pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_EXTRACTABLE: false,
		pkcs11.CKA_MODIFIABLE: true, pkcs11.CKA_ENCRYPT: false, pkcs11.CKA_DECRYPT: false, pkcs11.CKA_SIGN: false,
		pkcs11.CKA_VERIFY: false, pkcs11.CKA_WRAP: false, pkcs11.CKA_UNWRAP: false, pkcs11.CKA_DERIVE: false,
	}
	wantBools(t, "ledger object", rawAttrs(t, tk, l.obj, keys(want)...), want, attrNames)
	if _, err := l.Use(ctx, []int{0, 9, 19}); err != nil {
		t.Fatal(err)
	}
	if err := tk.Close(); err != nil {
		t.Fatal(err)
	}
	assertModuleUnused(t, tok.cfg.ModulePath) // the library was finalized

	tk2 := openToken(t, tok)
	l2, err := tk2.Ledger(ctx, "party/batch")
	if err != nil {
		t.Fatal(err)
	}
	used, err := l2.Used(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range used {
		if u != (i == 0 || i == 9 || i == 19) {
			t.Fatalf("after a restart used = %v; want slots 0, 9 and 19", used)
		}
	}
	if _, err := l2.Use(ctx, []int{9}); !errors.Is(err, ErrSlotUsed) {
		t.Fatalf("slot 9 after a restart: %v, want ErrSlotUsed", err)
	}
	// The ledger is no seal key.
	if _, err := tk2.SealKey(ctx, "kql 20 010208"); !errors.Is(err, ErrWeakKey) {
		t.Fatalf("loading the ledger object as a seal key: %v, want ErrWeakKey", err)
	}
}

// Ledgers made as private data objects by earlier versions (the form
// SoftHSM2 accepts) are still found, listed, marked and destroyed, and a
// new ledger cannot take their name.
func TestLedger_EarlierDataObjectFormStillWorks(t *testing.T) {
	ctx := context.Background()
	tk := openToken(t, softHSM2.newToken(t))
	var obj pkcs11.ObjectHandle
	err := tk.pool.with(ctx, func(sh pkcs11.SessionHandle) error {
		var err error
		obj, err = tk.mod.ctx.CreateObject(sh, append(legacyLedgerTemplate("party/old"),
			pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, "kql 8 01")))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.CreateLedger(ctx, "party/new", 4); err != nil {
		t.Fatal(err)
	}
	names, err := tk.Ledgers(ctx, "party/")
	slices.Sort(names)
	if err != nil || !slices.Equal(names, []string{"party/new", "party/old"}) {
		t.Fatalf("Ledgers = %v, %v", names, err)
	}
	if _, err := tk.CreateLedger(ctx, "party/old", 4); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("CreateLedger over an earlier-form ledger: %v, want ErrKeyExists", err)
	}
	l, err := tk.Ledger(ctx, "party/old")
	if err != nil {
		t.Fatal(err)
	}
	if l.obj != obj || l.Slots() != 8 {
		t.Fatalf("found object %d with %d slots, want %d with 8", l.obj, l.Slots(), obj)
	}
	if _, err := l.Use(ctx, []int{0}); !errors.Is(err, ErrSlotUsed) {
		t.Fatalf("slot 0, marked by the earlier version: %v, want ErrSlotUsed", err)
	}
	if left, err := l.Use(ctx, []int{1, 7}); err != nil || left != 5 {
		t.Fatalf("Use = %d, %v", left, err)
	}
	if err := l.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Ledger(ctx, "party/old"); !errors.Is(err, ErrLedgerNotFound) {
		t.Fatalf("after Destroy: %v, want ErrLedgerNotFound", err)
	}
}
