package audit_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/keyquorum/keyquorum/audit"
	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/internal/softhsm"
)

// hsmSealer seals detail parts with an HSM seal key, binding each to its
// detail ID, the way a keyquorum site wires its store's seal key in.
type hsmSealer struct {
	key   *hsmshare.SealKey
	party string
}

func (s hsmSealer) header(id string) hsmshare.Header {
	return hsmshare.Header{Kind: "audit-detail", KeyID: id, PartyID: s.party, Version: 1}
}

func (s hsmSealer) Seal(ctx context.Context, id string, plaintext []byte) ([]byte, error) {
	return s.key.Seal(ctx, s.header(id), plaintext)
}

func (s hsmSealer) Open(ctx context.Context, id string, sealed []byte) ([]byte, error) {
	return s.key.Open(ctx, sealed, s.header(id))
}

// TestHSM_IdentitySignsCheckpointsAndSealsDetails runs a site's log with
// the site's HSM identity key signing checkpoints and its HSM seal key
// sealing detail parts, both on a real SoftHSM2 token.
func TestHSM_IdentitySignsCheckpointsAndSealsDetails(t *testing.T) {
	ctx := context.Background()
	tok := softhsm.New(t)
	tk, err := hsmshare.Open(ctx, hsmshare.Config{ModulePath: tok.Dir.Module, TokenLabel: tok.Label, PIN: tok.PIN})
	if err != nil {
		t.Fatal(err)
	}
	tokenOpen := true
	defer func() {
		if tokenOpen {
			tk.Close()
		}
	}()
	identity, err := tk.CreateIdentity(ctx, "identity")
	if err != nil {
		t.Fatal(err)
	}
	sealKey, err := tk.CreateSealKey(ctx, "seal")
	if err != nil {
		t.Fatal(err)
	}
	wkey := newKey(t)
	wv, _ := audit.NewCosignatureVerifier(witnessB, wkey.Public())
	dir := filepath.Join(t.TempDir(), "audit")
	log, err := audit.Open(dir, audit.Config{
		Origin:    originA,
		Site:      "site-a",
		Signer:    identity,
		Sealer:    hsmSealer{key: sealKey, party: "site-a"},
		Witnesses: []note.Verifier{wv},
	})
	if err != nil {
		t.Fatal(err)
	}
	logOpen := true
	defer func() {
		if logOpen {
			log.Close()
		}
	}()

	intent := []byte(`{"to":"bc1q...","amount":"50000"}`)
	e, err := log.Append(ctx, audit.Record{Type: "sign.proposal", Fields: map[string]string{"intent": "digest"}, Detail: intent})
	if err != nil {
		t.Fatal(err)
	}
	if e.Detail == nil || e.Detail.Size == 0 || bytes.Contains(e.JSON(), intent) {
		t.Fatalf("entry %s", e.JSON())
	}
	if _, err := log.Append(ctx, audit.Record{Type: "sign.outcome", Detail: []byte("second intent")}); err != nil {
		t.Fatal(err)
	}
	got, err := log.OpenDetail(ctx, 0)
	if err != nil || !bytes.Equal(got, intent) {
		t.Fatalf("OpenDetail = %q, %v", got, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "entries"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, intent) {
		t.Fatal("the detail reached the disk unsealed")
	}

	// The identity key signs the checkpoint; a witness cosigns it.
	v, err := audit.NewVerifier(originA, identity.Public())
	if err != nil {
		t.Fatal(err)
	}
	w := newWitnessWithKey(t, witnessB, wkey, v)
	cp, err := log.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req, err := log.CosignRequest(cp, 0)
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := w.w.Cosign(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := log.AddCosignatures(ctx, cp, sigs); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.OpenCheckpoint(cp.Note(), v); err != nil {
		t.Fatalf("HSM-signed checkpoint does not verify: %v", err)
	}

	// A sealed part moved to another entry does not open there.
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	logOpen = false
	entries := filepath.Join(dir, "entries")
	recs := readRecords(t, entries)
	first, _ := audit.ParseEntry(recs[0].a)
	second, _ := audit.ParseEntry(recs[1].a)
	sealer := hsmSealer{key: sealKey, party: "site-a"}
	if _, err := sealer.Open(ctx, second.Detail.ID, recs[0].b); !errors.Is(err, hsmshare.ErrTampered) {
		t.Fatalf("opening entry 0's sealed part as entry 1's = %v, want hsmshare.ErrTampered", err)
	}
	// Moving it anyway, with entry 1's hash made to match, changes the
	// tree: Verify names the checkpoint, with no secret.
	moved := strings.Replace(string(recs[1].a), second.Detail.SHA256, first.Detail.SHA256, 1)
	moved = strings.Replace(moved, `"size":`+strconv.Itoa(second.Detail.Size), `"size":`+strconv.Itoa(first.Detail.Size), 1)
	tampered := append([]rawRecord(nil), recs...)
	tampered[1] = rawRecord{typ: recs[1].typ, a: []byte(moved), b: recs[0].b}
	writeRecords(t, entries, tampered)
	dropCaches(t, dir)
	_, err = audit.Verify(ctx, dir, audit.VerifyOptions{Log: v})
	wantVerifyError(t, err, audit.ErrInconsistent, -1, 1)

	// A flipped byte of a sealed part is named by Verify, with no secret.
	tampered = append([]rawRecord(nil), recs...)
	tampered[0].b = bytes.Clone(recs[0].b)
	tampered[0].b[5] ^= 1
	writeRecords(t, entries, tampered)
	_, err = audit.Verify(ctx, dir, audit.VerifyOptions{Log: v})
	wantVerifyError(t, err, audit.ErrCorrupted, 0, -1)

	// A token that fails makes Append fail closed.
	tk.Close()
	tokenOpen = false
	dir2 := filepath.Join(t.TempDir(), "audit2")
	log2, err := audit.Open(dir2, audit.Config{Origin: originA, Site: "site-a", Signer: newKey(t), Sealer: hsmSealer{key: sealKey, party: "site-a"}})
	if err != nil {
		t.Fatal(err)
	}
	defer log2.Close()
	if _, err := log2.Append(ctx, audit.Record{Type: "sign.proposal", Detail: intent}); !errors.Is(err, audit.ErrAppendFailed) {
		t.Fatalf("Append with a closed token = %v, want ErrAppendFailed", err)
	}
	if log2.Size() != 0 {
		t.Fatal("an entry whose detail could not be sealed was written")
	}
}
