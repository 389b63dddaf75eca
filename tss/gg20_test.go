package tss_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/tss/gg20"
)

func TestGG20_PresignAndSignOnline_2of3(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	firstDone := false
	for _, signers := range subsets(c.IDs(), 2) {
		initiator := c.Party(signers[0])
		start := time.Now()
		res, err := initiator.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 2})
		if err != nil {
			t.Fatalf("presign with %v: %v", signers, err)
		}
		t.Logf("2 presignatures for %v in %s", signers, time.Since(start))
		if res.Made != 2 || res.Pool.Initiator != signers[0] {
			t.Fatalf("made %d presignatures for %s, want 2 for %s", res.Made, res.Pool.Initiator, signers[0])
		}
		// One signature initiated by the other signer from its own pool,
		// then a batch of two from the first signer's pool. The first
		// online signature of an engine is checked the plain way (no
		// verifier table yet); the batch after PrepareOnline with the table.
		first := c.Party(signers[1]).Engine
		if _, err := first.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 1}); err != nil {
			t.Fatalf("presign by %s with %v: %v", signers[1], signers, err)
		}
		if !firstDone && tss.HasVerifier(first, info.PublicKey) {
			t.Fatal("a verifier table exists before any online signing")
		}
		firstDone = true
		d0 := sha256.Sum256([]byte("online 0"))
		sig, err := first.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d0[:]}})
		if err != nil {
			t.Fatalf("online sign with %v: %v", signers, err)
		}
		verifyBoth(t, info.PublicKey, d0[:], sig)
		// That signature had the table built in the background.
		for !tss.HasVerifier(first, info.PublicKey) {
			select {
			case <-ctx.Done():
				t.Fatal("no verifier table built after an online signature")
			case <-time.After(20 * time.Millisecond):
			}
		}
		var batch [][]byte
		for i := 1; i <= 2; i++ {
			d := sha256.Sum256([]byte(fmt.Sprintf("online %d", i)))
			batch = append(batch, d[:])
		}
		if err := initiator.Engine.PrepareOnline(ctx, info.ID, ""); err != nil {
			t.Fatal(err)
		}
		if !tss.HasVerifier(initiator.Engine, info.PublicKey) {
			t.Fatal("PrepareOnline left no verifier table")
		}
		sigs, err := initiator.Engine.SignBatch(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: batch})
		if err != nil {
			t.Fatalf("batch with %v: %v", signers, err)
		}
		for i, s := range sigs {
			verifyBoth(t, info.PublicKey, batch[i], s)
		}
		// The pool is empty now.
		_, err = initiator.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d0[:]}})
		if !errors.Is(err, tss.ErrNoPresignature) {
			t.Fatalf("signing from an empty pool: got %v, want ErrNoPresignature", err)
		}
	}
	// GG18 and GG20 signatures verify under the same key.
	d := sha256.Sum256([]byte("gg18"))
	sig, err := c.Parties[0].Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: d[:]})
	if err != nil {
		t.Fatal(err)
	}
	verifyBoth(t, info.PublicKey, d[:], sig)
}

func TestGG20_3of5_AllSubsets(t *testing.T) {
	if testing.Short() {
		t.Skip("3-of-5 over every subset is slow")
	}
	c := newCluster(t, 5, nil)
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i, signers := range subsets(c.IDs(), 3) {
		if _, err := c.Party(signers[2]).Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 1}); err != nil {
			t.Fatalf("presign with %v: %v", signers, err)
		}
		d := sha256.Sum256([]byte(fmt.Sprintf("3-of-5 subset %d", i)))
		sig, err := c.Party(signers[2]).Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}})
		if err != nil {
			t.Fatalf("online sign with %v: %v", signers, err)
		}
		verifyBoth(t, info.PublicKey, d[:], sig)
		// The same subset signs with GG18 under the same key.
		d18 := sha256.Sum256([]byte(fmt.Sprintf("3-of-5 gg18 %d", i)))
		sig18, err := c.Party(signers[1]).Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: d18[:], Signers: signers})
		if err != nil {
			t.Fatalf("gg18 sign with %v: %v", signers, err)
		}
		verifyBoth(t, info.PublicKey, d18[:], sig18)
	}
}

// A GG20 payload field as tss/gg20 encodes it (tss/gg20/message.go).
type gg20Field int

const (
	fieldByte    gg20Field = iota // one byte
	fieldFixed32                  // 32 bytes
	fieldInt                      // u16 length, then the big-endian bytes
	fieldPoint                    // 33-byte compressed point
)

func repeatField(f gg20Field, n int) []gg20Field { return slices.Repeat([]gg20Field{f}, n) }

// gg20SlotRounds describes the GG20 rounds whose broadcast carries one proof
// per verifier: the fields before the slots, the fields of one slot, which
// field of a slot the tests spoil (an integer response whose last bit they
// flip: it stays in range, and the proof's equations fail) and the
// sentinel of that proof.
var gg20SlotRounds = []struct {
	round    uint32
	head     []gg20Field
	slot     []gg20Field
	target   int
	sentinel error
}{
	// Cᵢ, cᵢ; range proof z, u, w, s, s1, s2: spoil s2.
	{1, []gg20Field{fieldByte, fieldFixed32, fieldInt}, repeatField(fieldInt, 6), 5, gg20.ErrRangeProof},
	// c^γ, Bob's proof (z, z', t, v, w, s, s1, s2, t1, t2), c^w, Bob's
	// proof with check and u: spoil t2 of the MtA(k, γ) proof.
	{2, []gg20Field{fieldByte}, append(repeatField(fieldInt, 22), fieldPoint), 10, gg20.ErrMtAProof},
	// R̄ᵢ; PDL proof z, u1, u2, u3, s1, s2, s3: spoil s3.
	{5, []gg20Field{fieldByte, fieldPoint}, []gg20Field{fieldInt, fieldPoint, fieldInt, fieldInt, fieldInt, fieldInt, fieldInt}, 6, gg20.ErrPDLProof},
}

var errTruncated = errors.New("truncated gg20 payload")

func fieldLen(b []byte, f gg20Field) (int, error) {
	n := map[gg20Field]int{fieldByte: 1, fieldFixed32: 32, fieldPoint: 33}[f]
	if f == fieldInt {
		if len(b) < 2 {
			return 0, errTruncated
		}
		n = 2 + int(binary.BigEndian.Uint16(b))
	}
	if len(b) < n {
		return 0, errTruncated
	}
	return n, nil
}

// spoilSlot returns a copy of a presigning bundle of one instance in which
// the integer field target of the entry at position slot of the gg20
// payload has its last bit flipped.
func spoilSlot(bundle []byte, head, slotFields []gg20Field, target, slot int) ([]byte, error) {
	if len(bundle) < 8 || binary.BigEndian.Uint16(bundle) != 1 {
		return nil, errors.New("want a bundle of one presigning instance")
	}
	out := bytes.Clone(bundle)
	p := out[8:] // count, then instance and length of the only entry
	var fields []gg20Field
	fields = append(fields, head...)
	for i := 0; i < slot; i++ {
		fields = append(fields, slotFields...)
	}
	fields = append(fields, slotFields[:target]...)
	for _, f := range fields {
		n, err := fieldLen(p, f)
		if err != nil {
			return nil, err
		}
		p = p[n:]
	}
	n, err := fieldLen(p, fieldInt)
	if err != nil || n < 3 {
		return nil, errTruncated
	}
	p[n-1] ^= 1
	return out, nil
}

// failureLog records the error of every presigning session that fails on
// each party, as the engines log it.
type failureLog struct {
	mu   sync.Mutex
	errs map[tss.PartyID][]string
}

func (l *failureLog) handler(p tss.PartyID) slog.Handler { return failureHandler{l, p} }

// next waits for the error of p's next failed presigning session after
// the first `seen` ones.
func (l *failureLog) next(t *testing.T, ctx context.Context, p tss.PartyID, seen int) string {
	t.Helper()
	for {
		l.mu.Lock()
		errs := l.errs[p]
		l.mu.Unlock()
		if len(errs) > seen {
			return errs[seen]
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s logged no failed presigning session", p)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (l *failureLog) count(p tss.PartyID) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.errs[p])
}

type failureHandler struct {
	log   *failureLog
	party tss.PartyID
}

func (h failureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h failureHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h failureHandler) WithGroup(string) slog.Handler            { return h }

func (h failureHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "session failed" {
		return nil
	}
	var op, msg string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "op":
			op = a.Value.String()
		case "err":
			msg = a.Value.String()
		}
		return true
	})
	if op == string(tss.OpPresign) {
		h.log.mu.Lock()
		if h.log.errs == nil {
			h.log.errs = map[tss.PartyID][]string{}
		}
		h.log.errs[h.party] = append(h.log.errs[h.party], msg)
		h.log.mu.Unlock()
	}
	return nil
}

// checkBlamed asserts that a's error and b's logged error both name only
// the cheater, for the check sentinel.
func checkBlamed(t *testing.T, err error, logged string, cheater tss.PartyID, sentinel error) {
	t.Helper()
	var ce *tss.CulpritError
	if !errors.As(err, &ce) || len(ce.Parties) != 1 || ce.Parties[0] != cheater || !errors.Is(err, sentinel) {
		t.Fatalf("initiator: got %v, want %v blaming only %s", err, sentinel, cheater)
	}
	if !strings.HasSuffix(logged, "; blame "+string(cheater)) || !strings.Contains(logged, sentinel.Error()) {
		t.Fatalf("other honest signer: got %q, want %v blaming only %s", logged, sentinel, cheater)
	}
}

// A signer that spoils only the proof it addresses to one honest verifier
// in round 1, 2 or 5 is blamed by both honest signers, whichever of them
// the proof was for: the verifier complains, the other checks the proof.
func TestGG20_ProofSpoiledForOneVerifierIsBlamedByEveryHonestSigner(t *testing.T) {
	var logs failureLog
	c, info, ctx := gg20Cluster(t, func(cfg *tss.Config) { cfg.Logger = slog.New(logs.handler(cfg.Network.Self())) })
	a, b, cheater := c.Parties[0], c.Parties[1], c.Parties[2]
	order, err := tss.GG20SignerOrder(info.ID, info.Epoch, c.IDs())
	if err != nil {
		t.Fatal(err)
	}
	from := slices.Index(order, cheater.ID)
	for _, r := range gg20SlotRounds {
		for _, victim := range []*testParty{a, b} {
			// The cheater's entries are in signer order, skipping itself.
			slot := slices.Index(order, victim.ID)
			if slot > from {
				slot--
			}
			cheater.Tamper(func(m *tss.Message) []*tss.Message {
				if m.Type == tss.MsgProtocol && m.Round == r.round {
					spoilt, err := spoilSlot(m.Payload, r.head, r.slot, r.target, slot)
					if err != nil {
						t.Errorf("round %d: %v", r.round, err) // not Fatal: this is the engine's goroutine
						return []*tss.Message{m}
					}
					m.Payload = spoilt
				}
				return []*tss.Message{m}
			})
			seen := logs.count(b.ID)
			_, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: c.IDs(), Count: 1})
			cheater.Tamper(nil)
			checkBlamed(t, err, logs.next(t, ctx, b.ID, seen), cheater.ID, r.sentinel)
		}
	}
}

// A signer that complains about valid proofs is blamed by both honest
// signers.
func TestGG20_FalseComplaintIsBlamedOnTheComplainer(t *testing.T) {
	var logs failureLog
	c, info, ctx := gg20Cluster(t, func(cfg *tss.Config) { cfg.Logger = slog.New(logs.handler(cfg.Network.Self())) })
	a, b, cheater := c.Parties[0], c.Parties[1], c.Parties[2]
	order, err := tss.GG20SignerOrder(info.ID, info.Epoch, c.IDs())
	if err != nil {
		t.Fatal(err)
	}
	// In place of its round-2 message the cheater accuses both others of
	// bad round-1 range proofs (tss/gg20/message.go: kind 2, the round,
	// the count, the accused signer indices).
	complaint := []byte{2, 1, 2}
	for i, p := range order {
		if p != cheater.ID {
			complaint = append(complaint, byte(i))
		}
	}
	bundle := binary.BigEndian.AppendUint16(nil, 1)
	bundle = binary.BigEndian.AppendUint16(bundle, 0)
	bundle = binary.BigEndian.AppendUint32(bundle, uint32(len(complaint)))
	bundle = append(bundle, complaint...)
	cheater.Tamper(func(m *tss.Message) []*tss.Message {
		if m.Type == tss.MsgProtocol && m.Round == 2 {
			m.Payload = bundle
		}
		return []*tss.Message{m}
	})
	_, err = a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: c.IDs(), Count: 1})
	checkBlamed(t, err, logs.next(t, ctx, b.ID, 0), cheater.ID, gg20.ErrFalseComplaint)
}

// The cheater cannot turn the verdict against the honest verifier by
// holding back its echo of the verifier's complaint: the verifier, which
// decides first, must not abort the session under the other honest
// signer, who would then blame the verifier instead of the cheater.
func TestGG20_DelayedEchoOfAComplaintDoesNotBlameTheVerifier(t *testing.T) {
	c, info, ctx := gg20Cluster(t, nil)
	a, b, cheater := c.Parties[0], c.Parties[1], c.Parties[2]
	order, err := tss.GG20SignerOrder(info.ID, info.Epoch, c.IDs())
	if err != nil {
		t.Fatal(err)
	}
	r := gg20SlotRounds[0] // range proofs; b complains in round 2
	slot := slices.Index(order, b.ID)
	if slot > slices.Index(order, cheater.ID) {
		slot--
	}
	var delayed sync.WaitGroup
	defer delayed.Wait()
	cheater.Tamper(func(m *tss.Message) []*tss.Message {
		switch {
		case m.Type == tss.MsgProtocol && m.Round == r.round:
			spoilt, err := spoilSlot(m.Payload, r.head, r.slot, r.target, slot)
			if err != nil {
				t.Errorf("round %d: %v", r.round, err) // not Fatal: this is the engine's goroutine
				return []*tss.Message{m}
			}
			m.Payload = spoilt
		case m.Type == tss.MsgEcho && m.Round == 2 && bytes.Contains(m.Payload, []byte(b.ID)):
			// The echo of b's complaint goes out to a two seconds late.
			delayed.Add(1)
			go func() {
				defer delayed.Done()
				time.Sleep(2 * time.Second)
				_ = cheater.Endpoint.Send(ctx, m)
			}()
			return nil
		}
		return []*tss.Message{m}
	})
	_, err = a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: c.IDs(), Count: 1})
	var ce *tss.CulpritError
	if !errors.As(err, &ce) || len(ce.Parties) != 1 || ce.Parties[0] != cheater.ID || !errors.Is(err, gg20.ErrRangeProof) {
		t.Fatalf("got %v, want ErrRangeProof blaming only %s", err, cheater.ID)
	}
}
