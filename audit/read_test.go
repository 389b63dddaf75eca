package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keyquorum/keyquorum/audit"
)

func TestProve_InclusionAgainstACosignedCheckpoint(t *testing.T) {
	ctx := context.Background()
	wkey := newKey(t)
	wv, _ := audit.NewCosignatureVerifier(witnessB, wkey.Public())
	s := newSite(t, func(c *audit.Config) { c.Witnesses = []note.Verifier{wv} })
	w := newWitnessWithKey(t, witnessB, wkey, s.verifier(t))
	s.appendN(t, 37)
	if _, err := s.log.Prove(ctx, 5, 1); !errors.Is(err, audit.ErrNotCosigned) {
		t.Fatalf("Prove before any checkpoint = %v, want ErrNotCosigned", err)
	}
	if _, err := cosign(t, s, w, s.checkpoint(t)); err != nil {
		t.Fatal(err)
	}
	s.appendN(t, 3) // not covered yet
	witnesses := []note.Verifier{wv}
	for _, i := range []uint64{0, 5, 31, 36} {
		p, err := s.log.Prove(ctx, i, 1)
		if err != nil {
			t.Fatalf("Prove(%d): %v", i, err)
		}
		// Through JSON, as kqnode audit prove prints it.
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var back audit.InclusionProof
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		e, cp, err := audit.VerifyInclusion(&back, s.verifier(t), witnesses, 1)
		if err != nil {
			t.Fatalf("VerifyInclusion(%d): %v", i, err)
		}
		if e.Seq != i || cp.Size != 37 || !cp.CosignedBy(witnessB) {
			t.Fatalf("proved entry %d in checkpoint %d", e.Seq, cp.Size)
		}
	}
	if _, err := s.log.Prove(ctx, 38, 1); !errors.Is(err, audit.ErrNotCosigned) {
		t.Fatalf("Prove of an uncovered entry = %v, want ErrNotCosigned", err)
	}
	if _, err := s.log.Prove(ctx, 40, 1); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("Prove of a missing entry = %v, want ErrNotFound", err)
	}

	p, err := s.log.Prove(ctx, 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	tamper := func(f func(p *audit.InclusionProof)) *audit.InclusionProof {
		q := *p
		q.Hashes = append([]audit.Hash(nil), p.Hashes...)
		f(&q)
		return &q
	}
	for name, tc := range map[string]struct {
		p        *audit.InclusionProof
		min      int
		sentinel error
	}{
		"edited entry":   {tamper(func(q *audit.InclusionProof) { q.Entry = strings.Replace(q.Entry, `"n":"5"`, `"n":"6"`, 1) }), 1, audit.ErrInconsistent},
		"other index":    {tamper(func(q *audit.InclusionProof) { q.Index = 6 }), 1, audit.ErrInconsistent},
		"flipped hash":   {tamper(func(q *audit.InclusionProof) { q.Hashes[2][0] ^= 1 }), 1, audit.ErrInconsistent},
		"short path":     {tamper(func(q *audit.InclusionProof) { q.Hashes = q.Hashes[1:] }), 1, audit.ErrInconsistent},
		"too few cosigs": {p, 2, audit.ErrNotCosigned},
		"forged root":    {tamper(func(q *audit.InclusionProof) { q.Checkpoint = strings.Replace(q.Checkpoint, "\n37\n", "\n38\n", 1) }), 1, audit.ErrBadSignature},
		"cosig by nobody": {tamper(func(q *audit.InclusionProof) {
			q.Checkpoint = q.Checkpoint[:strings.LastIndex(q.Checkpoint[:len(q.Checkpoint)-1], "\n")+1]
		}), 1, audit.ErrNotCosigned},
		"not an entry":     {tamper(func(q *audit.InclusionProof) { q.Entry = "{}" }), 1, audit.ErrCorrupted},
		"garbage note":     {tamper(func(q *audit.InclusionProof) { q.Checkpoint = "x" }), 1, audit.ErrMalformed},
		"entry of another": {tamper(func(q *audit.InclusionProof) { q.Entry = strings.Replace(q.Entry, "site-a", "site-b", 1) }), 1, audit.ErrInconsistent},
	} {
		if _, _, err := audit.VerifyInclusion(tc.p, s.verifier(t), witnesses, tc.min); !errors.Is(err, tc.sentinel) {
			t.Errorf("%s: VerifyInclusion = %v, want %v", name, err, tc.sentinel)
		}
	}
}

func TestExport_JSONLinesSinceATime(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	s := newSite(t, func(c *audit.Config) { c.Now = fixedClock(t0, time.Second) })
	s.appendN(t, 10) // entry i at t0 + (i+1)s
	var buf bytes.Buffer
	n, err := s.log.Export(context.Background(), &buf, t0.Add(7*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("exported %d entries, want 4 (entries 6..9)", n)
	}
	sc := bufio.NewScanner(&buf)
	want := uint64(6)
	for sc.Scan() {
		e, err := audit.ParseEntry(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != want {
			t.Fatalf("line for entry %d, want %d", e.Seq, want)
		}
		// Each line is the leaf: its hash matches the stored entry's.
		stored, err := s.log.Entry(context.Background(), e.Seq)
		if err != nil || stored.Hash() != e.Hash() {
			t.Fatalf("entry %d: exported line differs from the stored entry", e.Seq)
		}
		want++
	}
	if want != 10 {
		t.Fatalf("export ended at %d", want)
	}
	buf.Reset()
	if n, err := s.log.Export(context.Background(), &buf, t0.Add(time.Hour)); err != nil || n != 0 || buf.Len() != 0 {
		t.Fatalf("export of the future: %d, %v, %q", n, err, buf.String())
	}
	if n, err := s.log.Export(context.Background(), &buf, time.Time{}); err != nil || n != 10 {
		t.Fatalf("export of everything: %d, %v", n, err)
	}
}

func TestTail_ReturnsTheLastEntries(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	if tail, err := s.log.Tail(ctx, 5); err != nil || len(tail) != 0 {
		t.Fatalf("Tail of an empty log: %v, %v", tail, err)
	}
	s.appendN(t, 8)
	tail, err := s.log.Tail(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(tail) != 3 || tail[0].Seq != 5 || tail[2].Seq != 7 {
		t.Fatalf("Tail(3) = %v", tail)
	}
	if tail, _ := s.log.Tail(ctx, 100); len(tail) != 8 {
		t.Fatalf("Tail(100) has %d entries", len(tail))
	}
}

func TestFollow_DeliversExistingAndNewEntries(t *testing.T) {
	s := newSite(t)
	s.appendN(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan uint64, 100)
	done := make(chan error, 1)
	go func() {
		done <- s.log.Follow(ctx, 1, func(e audit.Entry) error {
			got <- e.Seq
			return nil
		})
	}()
	for want := uint64(1); want < 3; want++ {
		if seq := <-got; seq != want {
			t.Fatalf("followed %d, want %d", seq, want)
		}
	}
	s.appendN(t, 2)
	for want := uint64(3); want < 5; want++ {
		select {
		case seq := <-got:
			if seq != want {
				t.Fatalf("followed %d, want %d", seq, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("entry %d was not delivered", want)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow = %v, want context.Canceled", err)
	}

	// Follow stops when the log closes.
	go func() {
		done <- s.log.Follow(context.Background(), 5, func(audit.Entry) error { return nil })
	}()
	time.Sleep(20 * time.Millisecond)
	s.close(t)
	if err := <-done; !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("Follow after Close = %v, want ErrClosed", err)
	}
}

func TestOpenReadOnly_FollowsAWriterInAnotherHandle(t *testing.T) {
	s := newSite(t)
	s.appendN(t, 2)
	s.checkpoint(t)
	r, err := audit.OpenReadOnly(s.dir, s.verifier(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Size() != 2 || r.LatestCheckpoint().Size != 2 {
		t.Fatalf("reader sees %d entries", r.Size())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stop := errors.New("seen enough")
	appended := make(chan error, 1)
	go func() {
		var err error
		for range 3 {
			if _, err = s.log.Append(ctx, audit.Record{Type: "t"}); err != nil {
				break
			}
		}
		appended <- err
	}()
	defer func() {
		if err := <-appended; err != nil {
			t.Error(err)
		}
	}()
	err = r.Follow(ctx, 0, func(e audit.Entry) error {
		if e.Seq == 4 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Follow on the reader = %v", err)
	}
}
