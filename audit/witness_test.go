package audit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keyquorum/keyquorum/audit"
)

// witness is a site acting as a witness, with its own store.
type witness struct {
	w     *audit.Witness
	store *audit.FileWitnessStore
	dir   string
	key   *ecdsa.PrivateKey
	name  string
	logs  []note.Verifier
}

func newWitness(t testing.TB, name string, logs ...note.Verifier) *witness {
	t.Helper()
	return newWitnessWithKey(t, name, newKey(t), logs...)
}

func newWitnessWithKey(t testing.TB, name string, key *ecdsa.PrivateKey, logs ...note.Verifier) *witness {
	t.Helper()
	w := &witness{dir: filepath.Join(t.TempDir(), "witness"), key: key, name: name, logs: logs}
	w.open(t)
	t.Cleanup(func() { w.store.Close() })
	return w
}

func (w *witness) open(t testing.TB) {
	t.Helper()
	st, err := audit.OpenWitnessStore(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	w.store = st
	w.w, err = audit.NewWitness(audit.WitnessConfig{Name: w.name, Signer: w.key, Logs: w.logs, Store: st})
	if err != nil {
		t.Fatal(err)
	}
}

// cosign has w cosign cp through RequestCosignature, with the request
// going over the wire format and back. It returns the witness's error if
// it refuses.
func cosign(t testing.TB, s *site, w *witness, cp *audit.Checkpoint) (*audit.Checkpoint, error) {
	t.Helper()
	return s.log.RequestCosignature(context.Background(), cp, w.name, func(ctx context.Context, req *audit.CosignRequest) ([]byte, error) {
		wire, err := audit.ParseCosignRequest(req.Marshal())
		if err != nil {
			return nil, err
		}
		return w.w.Cosign(ctx, wire)
	})
}

func TestWitness_CosignsConsistentCheckpoints(t *testing.T) {
	ctx := context.Background()
	wkey := newKey(t)
	wv, err := audit.NewCosignatureVerifier(witnessB, wkey.Public())
	if err != nil {
		t.Fatal(err)
	}
	s := newSite(t, func(c *audit.Config) { c.Witnesses = []note.Verifier{wv} })
	w := newWitnessWithKey(t, witnessB, wkey, s.verifier(t))

	s.appendN(t, 3)
	cp1, err := cosign(t, s, w, s.checkpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	if !cp1.CosignedBy(witnessB) || cp1.Cosignatures[0].KeyHash != wv.KeyHash() {
		t.Fatalf("cosignatures %+v", cp1.Cosignatures)
	}
	if d := time.Since(cp1.Cosignatures[0].Time); d < -time.Minute || d > time.Minute {
		t.Fatalf("cosignature time %v", cp1.Cosignatures[0].Time)
	}
	// The witness now knows size 3: a request from size 0 conflicts.
	s.appendN(t, 4)
	cp2 := s.checkpoint(t)
	req, err := s.log.CosignRequest(cp2, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conflict *audit.ConflictError
	if _, err := w.w.Cosign(ctx, req); !errors.As(err, &conflict) || conflict.Size != 3 || conflict.Origin != originA {
		t.Fatalf("Cosign from size 0 = %v, want a conflict at size 3", err)
	}
	if _, err := cosign(t, s, w, cp2); err != nil {
		t.Fatal(err)
	}
	// Cosigning the same checkpoint again is fine.
	if _, err := cosign(t, s, w, cp2); err != nil {
		t.Fatal(err)
	}
	// The witness cosigned a checkpoint whose cosignature never reached
	// the log: RequestCosignature starts from the size it remembers,
	// gets a conflict and retries from the witness's size.
	s.appendN(t, 2)
	lost := s.checkpoint(t)
	req, _ = s.log.CosignRequest(lost, 7)
	if _, err := w.w.Cosign(ctx, req); err != nil {
		t.Fatal(err)
	}
	s.appendN(t, 1)
	asks := 0
	got, err := s.log.RequestCosignature(ctx, s.checkpoint(t), witnessB, func(ctx context.Context, req *audit.CosignRequest) ([]byte, error) {
		asks++
		return w.w.Cosign(ctx, req)
	})
	if err != nil || !got.CosignedBy(witnessB) || asks != 2 {
		t.Fatalf("RequestCosignature after a lost cosignature: %v after %d requests", err, asks)
	}
	// The witness store survives a restart of the witness.
	w.store.Close()
	w.open(t)
	s.appendN(t, 1)
	if _, err := cosign(t, s, w, s.checkpoint(t)); err != nil {
		t.Fatal(err)
	}
	// The origin keeps the cosignatures across a restart, and Verify
	// checks them.
	s.reopen(t)
	cps := s.log.Checkpoints()
	if len(cps) != 5 || !cps[0].CosignedBy(witnessB) || !cps[1].CosignedBy(witnessB) || cps[2].CosignedBy(witnessB) || !cps[3].CosignedBy(witnessB) || !cps[4].CosignedBy(witnessB) {
		t.Fatalf("checkpoints after reopen: %+v", cps)
	}
	rep, err := s.verify(t, audit.VerifyOptions{Witnesses: []note.Verifier{wv}})
	if err != nil || rep.LatestCosigned == nil || rep.LatestCosigned.Size != 11 {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
}

func TestWitness_DetectsTruncationAndRewrite(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		attack func(t *testing.T, a *auditedSite) *audit.Checkpoint
		kind   string
	}{
		{"truncated below what the witness saw", func(t *testing.T, a *auditedSite) *audit.Checkpoint {
			return a.forgeTail(t, 15, 0, false)
		}, audit.RewriteTruncated},
		{"tail rewritten and re-signed with the site's key", func(t *testing.T, a *auditedSite) *audit.Checkpoint {
			return a.forgeTail(t, 15, 12, false)
		}, audit.RewriteInconsistent},
		{"same size, another history", func(t *testing.T, a *auditedSite) *audit.Checkpoint {
			return a.forgeTail(t, 15, 5, false)
		}, audit.RewriteForked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuditedSite(t)
			seen, _ := a.wit.store.LastSeen(ctx, originA)
			forged := tc.attack(t, a)
			a.open(t)
			defer a.close(t)
			// Whatever old size the site claims, the witness refuses.
			for _, old := range []uint64{0, 15, 20} {
				if old > forged.Size {
					continue
				}
				req, err := a.log.CosignRequest(forged, old)
				if err != nil {
					t.Fatal(err)
				}
				_, err = a.wit.w.Cosign(ctx, req)
				var rw *audit.RewriteError
				if tc.kind == audit.RewriteInconsistent && old != 20 {
					// Only a proof from the witness's size can be checked;
					// from any other size the site is told to retry.
					var conflict *audit.ConflictError
					if !errors.As(err, &conflict) || conflict.Size != 20 {
						t.Fatalf("old %d: Cosign = %v, want a conflict at 20", old, err)
					}
					continue
				}
				if !errors.As(err, &rw) || !errors.Is(err, audit.ErrRewritten) {
					t.Fatalf("old %d: Cosign = %v, want a *RewriteError", old, err)
				}
				if rw.Origin != originA || rw.Kind != tc.kind || rw.Seen != string(seen) || rw.Got != string(forged.Note()) {
					t.Fatalf("evidence %+v", rw)
				}
				if !strings.Contains(err.Error(), originA) {
					t.Fatalf("error does not name the origin: %v", err)
				}
				// The evidence survives serialization and stands on its own.
				b, err := json.Marshal(rw)
				if err != nil {
					t.Fatal(err)
				}
				var back audit.RewriteError
				if err := json.Unmarshal(b, &back); err != nil {
					t.Fatal(err)
				}
				if err := audit.CheckEvidence(&back, a.verifier(t)); err != nil {
					t.Fatalf("CheckEvidence: %v", err)
				}
			}
			// The witness still holds the old checkpoint.
			if now, _ := a.wit.store.LastSeen(ctx, originA); !bytes.Equal(now, seen) {
				t.Fatal("the witness replaced its checkpoint with the rewritten one")
			}
		})
	}
}

func TestCheckEvidence_RejectsFalseAccusations(t *testing.T) {
	a := newAuditedSite(t)
	cps := readRecords(t, a.path("checkpoints"))
	ten, twenty := string(cps[0].a), string(cps[2].a)
	v := a.verifier(t)
	for name, e := range map[string]*audit.RewriteError{
		"growth called truncation": {Origin: originA, Kind: audit.RewriteTruncated, Seen: ten, Got: twenty},
		"same checkpoint as fork":  {Origin: originA, Kind: audit.RewriteForked, Seen: ten, Got: ten},
		"unsigned checkpoint":      {Origin: originA, Kind: audit.RewriteTruncated, Seen: twenty, Got: noteTextOnly(ten) + "\n— " + originA + " AAAAAAAA\n"},
		"valid proof":              {Origin: originA, Kind: audit.RewriteInconsistent, Seen: ten, Got: twenty, OldSize: 10, Proof: consistencyProof(t, a, 10, 20)},
	} {
		if err := audit.CheckEvidence(e, v); err == nil {
			t.Errorf("%s: CheckEvidence accepted it", name)
		}
	}
}

func consistencyProof(t *testing.T, a *auditedSite, from, to uint64) []audit.Hash {
	t.Helper()
	a.open(t)
	defer a.close(t)
	for _, cp := range a.log.Checkpoints() {
		if cp.Size == to {
			req, err := a.log.CosignRequest(cp, from)
			if err != nil {
				t.Fatal(err)
			}
			return req.Proof
		}
	}
	t.Fatalf("no checkpoint of size %d", to)
	return nil
}

func noteTextOnly(signed string) string {
	return signed[:strings.LastIndex(signed, "\n\n")+1]
}

func TestWitness_RefusesUnknownOriginsAndBadSignatures(t *testing.T) {
	ctx := context.Background()
	s := newSite(t)
	w := newWitness(t, witnessB, s.verifier(t))
	s.appendN(t, 2)
	cp := s.checkpoint(t)

	other := newSite(t, func(c *audit.Config) { c.Origin = originB })
	other.appendN(t, 2)
	req, _ := other.log.CosignRequest(other.checkpoint(t), 0)
	if _, err := w.w.Cosign(ctx, req); !errors.Is(err, audit.ErrUnknownOrigin) {
		t.Fatalf("unknown origin: %v", err)
	}

	// Another key signs a checkpoint under A's origin.
	impostor := newSite(t)
	impostor.appendN(t, 5)
	req, _ = impostor.log.CosignRequest(impostor.checkpoint(t), 0)
	if _, err := w.w.Cosign(ctx, req); !errors.Is(err, audit.ErrBadSignature) {
		t.Fatalf("impostor: %v", err)
	}

	// A flipped signature byte.
	good, _ := s.log.CosignRequest(cp, 0)
	bad := *good
	bad.Checkpoint = bytes.Clone(good.Checkpoint)
	bad.Checkpoint[len(bad.Checkpoint)-5] ^= 1
	if _, err := w.w.Cosign(ctx, &bad); !errors.Is(err, audit.ErrBadSignature) && !errors.Is(err, audit.ErrMalformed) {
		t.Fatalf("flipped signature: %v", err)
	}
	// Old size beyond the checkpoint, and a proof where none belongs.
	bad = *good
	bad.OldSize = 3
	if _, err := w.w.Cosign(ctx, &bad); !errors.Is(err, audit.ErrMalformed) {
		t.Fatalf("old size beyond the checkpoint: %v", err)
	}
	bad = *good
	bad.Proof = []audit.Hash{{1}}
	if _, err := w.w.Cosign(ctx, &bad); !errors.Is(err, audit.ErrMalformed) {
		t.Fatalf("proof from size 0: %v", err)
	}
	// None of that changed what the witness saw.
	if seen, _ := w.store.LastSeen(ctx, originA); seen != nil {
		t.Fatal("a refused request was stored")
	}
	if _, err := cosign(t, s, w, cp); err != nil {
		t.Fatal(err)
	}
}

func TestAddCosignatures_RefusesBadCosignatures(t *testing.T) {
	ctx := context.Background()
	wkey := newKey(t)
	wv, _ := audit.NewCosignatureVerifier(witnessB, wkey.Public())
	s := newSite(t, func(c *audit.Config) { c.Witnesses = []note.Verifier{wv} })
	w := newWitnessWithKey(t, witnessB, wkey, s.verifier(t))
	s.appendN(t, 2)
	cp := s.checkpoint(t)
	req, _ := s.log.CosignRequest(cp, 0)
	sigs, err := w.w.Cosign(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(sigs)
	flipped[len(flipped)-6] ^= 1
	if _, err := s.log.AddCosignatures(ctx, cp, flipped); !errors.Is(err, audit.ErrBadSignature) && !errors.Is(err, audit.ErrMalformed) {
		t.Fatalf("flipped cosignature: %v", err)
	}
	// An unknown witness's cosignature is dropped, not stored.
	stranger := newWitness(t, witnessC, s.verifier(t))
	other, err := stranger.w.Cosign(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.log.AddCosignatures(ctx, cp, other)
	if err != nil || len(got.Cosignatures) != 0 {
		t.Fatalf("unknown witness: %+v, %v", got, err)
	}
	// A cosignature of another checkpoint does not verify here.
	s.appendN(t, 1)
	cp2 := s.checkpoint(t)
	if _, err := s.log.AddCosignatures(ctx, cp2, sigs); !errors.Is(err, audit.ErrBadSignature) {
		t.Fatalf("cosignature of another checkpoint: %v", err)
	}
	// Only the newest checkpoint takes cosignatures.
	if _, err := s.log.AddCosignatures(ctx, cp, sigs); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("cosignature of a superseded checkpoint: %v", err)
	}
	for _, junk := range []string{"", "x\n", "— a\n— b", "— " + witnessB + " !!!\n"} {
		if _, err := s.log.AddCosignatures(ctx, cp2, []byte(junk)); !errors.Is(err, audit.ErrMalformed) {
			t.Errorf("AddCosignatures(%q) = %v, want ErrMalformed", junk, err)
		}
	}
	got, err = cosign(t, s, w, cp2)
	if err != nil || !got.CosignedBy(witnessB) {
		t.Fatalf("good cosignature: %+v, %v", got, err)
	}
}

func TestRewriteError_DescribesMalformedEvidence(t *testing.T) {
	var e audit.RewriteError
	if err := json.Unmarshal([]byte(`{"origin":"x","kind":"forked","seen":"junk","got":""}`), &e); err != nil {
		t.Fatal(err)
	}
	if msg := e.Error(); !strings.Contains(msg, "x") {
		t.Fatalf("Error() = %q", msg)
	}
	if err := audit.CheckEvidence(&e, newSite(t).verifier(t)); !errors.Is(err, audit.ErrMalformed) {
		t.Fatalf("CheckEvidence of junk = %v", err)
	}
}
