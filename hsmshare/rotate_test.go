package hsmshare

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// rec is one stored version.
type rec struct {
	kind, id string
	v        uint64
}

// fillStore writes a few kinds, ids and versions and returns their data.
func fillStore(t *testing.T, st *Store) map[rec]string {
	t.Helper()
	want := map[rec]string{}
	for _, r := range []rec{
		{"keyshare", "key-1", 1}, {"keyshare", "key-1", 2}, {"keyshare", "key-2", 1},
		{"presignature", "p-1", 1}, {"preparams", "pp-0", 3},
	} {
		data := fmt.Sprintf("secret %s/%s/%d", r.kind, r.id, r.v)
		mustPut(t, st, r.kind, r.id, r.v, []byte(data))
		want[r] = data
	}
	return want
}

// readAll checks that every record in want reads back exactly.
func readAll(t *testing.T, st *Store, want map[rec]string) {
	t.Helper()
	for r, data := range want {
		got, err := st.GetVersion(context.Background(), r.kind, r.id, r.v)
		if err != nil || string(got) != data {
			t.Fatalf("%s/%s v%d = %q, %v; want %q", r.kind, r.id, r.v, got, err, data)
		}
	}
}

// sealedUnder counts the stored blobs per seal-key ID.
func sealedUnder(t *testing.T, st *Store) map[string]int {
	t.Helper()
	n := map[string]int{}
	err := st.eachVersion(func(kind, id string, v uint64) error {
		keyID, err := st.blobSealKeyID(kind, id, v)
		n[keyID]++
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRotate_ReSealsEverythingThenFreesOldKey(t *testing.T) {
	ctx := context.Background()
	forEachProfile(t, func(t *testing.T, im impl, scheme Scheme) {
		f := newStoreFixture(t, im, scheme)
		want := fillStore(t, f.st)
		newKey, err := f.tk.CreateSealKey(ctx, "seal-2")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.key.Destroy(ctx); !errors.Is(err, ErrKeyInUse) {
			t.Fatalf("Destroy of a key an open store uses: %v, want ErrKeyInUse", err)
		}
		if err := f.st.Rotate(ctx, newKey); err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		if n := sealedUnder(t, f.st); n[newKey.ID()] != len(want) || len(n) != 1 {
			t.Fatalf("after Rotate blobs are sealed under %v, want all %d under %s", n, len(want), newKey.ID())
		}
		if f.st.SealKey() != newKey || f.st.RotationPending() {
			t.Fatal("store did not switch to the new key")
		}
		if err := f.key.Destroy(ctx); err != nil {
			t.Fatalf("Destroy of the old key after Rotate: %v", err)
		}
		readAll(t, f.st, want)
		// Rotating again to the same key is a no-op.
		if err := f.st.Rotate(ctx, newKey); err != nil {
			t.Fatal(err)
		}
		// Reopened with only the new key, everything reads.
		if err := f.st.Close(); err != nil {
			t.Fatal(err)
		}
		readAll(t, openStore(t, f.dir, newKey, testParty), want)
	})
}

var errInterrupted = errors.New("interrupted by test")

// TestRotate_InterruptedAtEveryStep stops Rotate at every step (after the
// journal, after each re-sealed blob, before and after the read-back, after
// the journal is gone), then reopens the store as a restarted process
// would, with either key, reads everything, writes, and resumes. Its
// subject is the journal on disk; it runs on SoftHSM2 only, to keep the
// suite short: the token calls of a rotation are those of
// TestRotate_ReSealsEverythingThenFreesOldKey and TestRotate_CrashedProcess,
// which run on every implementation.
func TestRotate_InterruptedAtEveryStep(t *testing.T) {
	testRotateInterruptedAtEveryStep(t, softHSM2)
}

func testRotateInterruptedAtEveryStep(t *testing.T, im impl) {
	ctx := context.Background()
	type stop struct {
		step string
		n    int
	}
	stops := []stop{{stepJournal, 0}}
	for i := 1; i <= 5; i++ {
		stops = append(stops, stop{stepResealed, i})
	}
	stops = append(stops, stop{stepResealedAll, 5}, stop{stepVerified, 5}, stop{stepDone, 5})
	for _, reopenWithNew := range []bool{false, true} {
		for _, s := range stops {
			name := fmt.Sprintf("%s-%d/reopen-with-%s", s.step, s.n, map[bool]string{false: "old", true: "new"}[reopenWithNew])
			t.Run(name, func(t *testing.T) {
				f := newStoreFixture(t, im, SchemeGCM)
				want := fillStore(t, f.st)
				newKey, err := f.tk.CreateSealKey(ctx, "seal-2")
				if err != nil {
					t.Fatal(err)
				}
				f.st.hooks.rotate = func(step string, n int) error {
					if step == s.step && n == s.n {
						return errInterrupted
					}
					return nil
				}
				if err := f.st.Rotate(ctx, newKey); !errors.Is(err, errInterrupted) {
					t.Fatalf("Rotate: %v, want the interruption", err)
				}
				if got := sealedUnder(t, f.st)[newKey.ID()]; s.step == stepResealed && got != s.n {
					t.Fatalf("%d blobs re-sealed when stopped after %d", got, s.n)
				}
				// The process "restarts".
				if err := f.st.Close(); err != nil {
					t.Fatal(err)
				}
				key := f.key
				if reopenWithNew {
					key = newKey
				}
				if s.step == stepDone && !reopenWithNew {
					// The rotation had finished: the old key is refused.
					if _, err := OpenStore(f.dir, key, testParty); !errors.Is(err, ErrWrongSealKey) {
						t.Fatalf("OpenStore with the old key after a finished rotation: %v, want ErrWrongSealKey", err)
					}
					key = newKey
				}
				st := openStore(t, f.dir, key, testParty)
				if pending := st.RotationPending(); pending != (s.step != stepDone) {
					t.Fatalf("RotationPending = %v", pending)
				}
				readAll(t, st, want)
				// New writes during the unfinished rotation use the new key.
				mustPut(t, st, "keyshare", "written-mid-rotation", 1, []byte("mid"))
				want[rec{"keyshare", "written-mid-rotation", 1}] = "mid"
				if st.RotationPending() {
					if id, _ := st.blobSealKeyID("keyshare", "written-mid-rotation", 1); id != newKey.ID() {
						t.Fatalf("record written mid-rotation sealed under %s, want the new key", id)
					}
					if err := f.key.Destroy(ctx); !errors.Is(err, ErrKeyInUse) {
						t.Fatalf("Destroy mid-rotation: %v, want ErrKeyInUse", err)
					}
				}
				if err := st.Rotate(ctx, newKey); err != nil {
					t.Fatalf("resumed Rotate: %v", err)
				}
				if n := sealedUnder(t, st); n[newKey.ID()] != len(want) || len(n) != 1 {
					t.Fatalf("after the resumed Rotate blobs are under %v", n)
				}
				if err := st.Close(); err != nil {
					t.Fatal(err)
				}
				if err := f.key.Destroy(ctx); err != nil {
					t.Fatalf("Destroy the old key: %v", err)
				}
				readAll(t, openStore(t, f.dir, newKey, testParty), want)
			})
		}
	}
}

// TestRotate_CrashedProcess kills a second process in the middle of
// re-sealing, then reads and finishes from this one.
func TestRotate_CrashedProcess(t *testing.T) {
	forEachImpl(t, testRotateCrashedProcess)
}

func testRotateCrashedProcess(t *testing.T, im impl) {
	ctx := context.Background()
	f := newStoreFixture(t, im, SchemeGCM)
	want := fillStore(t, f.st)
	newKey, err := f.tk.CreateSealKey(ctx, "seal-2")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	code, out := child{role: "crash-mid-rotation", tok: f.tok, env: map[string]string{
		"HSMSHARE_CHILD_KEY": "seal", "HSMSHARE_CHILD_NEWKEY": "seal-2",
		"HSMSHARE_CHILD_STORE": f.dir, "HSMSHARE_CHILD_AFTER": strconv.Itoa(2),
	}}.run(t)
	if code != childCrashed {
		t.Fatalf("child exited %d, want %d: %s", code, childCrashed, out)
	}
	if _, err := os.Stat(filepath.Join(f.dir, journalName)); err != nil {
		t.Fatalf("no rotation journal after the crash: %v", err)
	}
	st := openStore(t, f.dir, f.key, testParty)
	if n := sealedUnder(t, st); n[newKey.ID()] != 2 || n[f.key.ID()] != len(want)-2 {
		t.Fatalf("after the crash blobs are under %v", n)
	}
	readAll(t, st, want)
	if err := st.Rotate(ctx, newKey); err != nil {
		t.Fatal(err)
	}
	readAll(t, st, want)
}

func TestRotate_RefusesAnotherRotationWhilePending(t *testing.T) {
	forEachImpl(t, testRotateRefusesAnotherRotationWhilePending)
}

func testRotateRefusesAnotherRotationWhilePending(t *testing.T, im impl) {
	ctx := context.Background()
	f := newStoreFixture(t, im, SchemeGCM)
	fillStore(t, f.st)
	k2, err := f.tk.CreateSealKey(ctx, "seal-2")
	if err != nil {
		t.Fatal(err)
	}
	k3, err := f.tk.CreateSealKey(ctx, "seal-3")
	if err != nil {
		t.Fatal(err)
	}
	f.st.hooks.rotate = func(step string, n int) error {
		if step == stepResealed {
			return errInterrupted
		}
		return nil
	}
	if err := f.st.Rotate(ctx, k2); !errors.Is(err, errInterrupted) {
		t.Fatal(err)
	}
	f.st.hooks.rotate = nil
	if err := f.st.Rotate(ctx, k3); err == nil {
		t.Fatal("Rotate to a third key while a rotation is pending succeeded")
	}
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(f.dir, k3, testParty); err == nil {
		t.Fatal("OpenStore mid-rotation with an unrelated key succeeded")
	}
}

// If the old key disappears after everything was re-sealed (someone
// destroyed it too early from another process), the store still opens and
// the rotation finishes.
func TestRotate_OldKeyGoneAfterReseal(t *testing.T) {
	forEachImpl(t, testRotateOldKeyGoneAfterReseal)
}

func testRotateOldKeyGoneAfterReseal(t *testing.T, im impl) {
	ctx := context.Background()
	f := newStoreFixture(t, im, SchemeGCM)
	want := fillStore(t, f.st)
	newKey, err := f.tk.CreateSealKey(ctx, "seal-2")
	if err != nil {
		t.Fatal(err)
	}
	f.st.hooks.rotate = func(step string, n int) error {
		if step == stepVerified {
			return errInterrupted
		}
		return nil
	}
	if err := f.st.Rotate(ctx, newKey); !errors.Is(err, errInterrupted) {
		t.Fatal(err)
	}
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.key.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, f.dir, newKey, testParty)
	readAll(t, st, want)
	if err := st.Rotate(ctx, newKey); err != nil {
		t.Fatal(err)
	}
	if st.RotationPending() {
		t.Fatal("rotation still pending")
	}
}

// If the old key disappears while blobs are still sealed under it, those
// blobs report ErrKeyNotFound and the others still read.
func TestRotate_OldKeyGoneBeforeReseal(t *testing.T) {
	forEachImpl(t, testRotateOldKeyGoneBeforeReseal)
}

func testRotateOldKeyGoneBeforeReseal(t *testing.T, im impl) {
	ctx := context.Background()
	f := newStoreFixture(t, im, SchemeGCM)
	fillStore(t, f.st)
	newKey, err := f.tk.CreateSealKey(ctx, "seal-2")
	if err != nil {
		t.Fatal(err)
	}
	f.st.hooks.rotate = func(step string, n int) error {
		if step == stepJournal {
			return errInterrupted
		}
		return nil
	}
	if err := f.st.Rotate(ctx, newKey); !errors.Is(err, errInterrupted) {
		t.Fatal(err)
	}
	mustPut(t, f.st, "keyshare", "new", 1, []byte("under the new key"))
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.key.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, f.dir, newKey, testParty)
	if _, err := st.GetVersion(ctx, "keyshare", "key-1", 1); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("blob under the destroyed key: %v, want ErrKeyNotFound", err)
	}
	if data, _, err := st.Get(ctx, "keyshare", "new"); err != nil || string(data) != "under the new key" {
		t.Fatalf("blob under the new key: %q, %v", data, err)
	}
	if err := st.Rotate(ctx, newKey); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Rotate without the old key: %v, want ErrKeyNotFound", err)
	}
}
