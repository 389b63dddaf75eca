package tss_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyquorum/keyquorum/tss"
)

// presigJournal collects one party's presignature events and can refuse
// to record their use, as an audit log that cannot append does.
type presigJournal struct {
	mu      sync.Mutex
	events  []tss.PresignatureEvent
	refuse  atomic.Bool
	refused atomic.Int32
}

var errJournalFull = errors.New("journal cannot append")

func (j *presigJournal) record(_ context.Context, ev tss.PresignatureEvent) error {
	if ev.Change == tss.PresignaturesUsed && j.refuse.Load() {
		j.refused.Add(1)
		return errJournalFull
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, ev)
	return nil
}

func (j *presigJournal) of(c tss.PresignatureChange) []tss.PresignatureEvent {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []tss.PresignatureEvent
	for _, ev := range j.events {
		if ev.Change == c {
			out = append(out, ev)
		}
	}
	return out
}

// TestGG20_PresignatureUseIsRecordedBeforeSharesLeave: every signer reports
// the presignatures it makes and uses, with the same IDs, session and
// pool; a signer that cannot record a use sends no signature share (its
// presignature stays used up), and the initiator records the burn.
func TestGG20_PresignatureUseIsRecordedBeforeSharesLeave(t *testing.T) {
	journals := map[tss.PartyID]*presigJournal{}
	var jmu sync.Mutex
	c, info, ctx := gg20Cluster(t, func(cfg *tss.Config) {
		j := &presigJournal{}
		jmu.Lock()
		journals[cfg.Network.Self()] = j
		jmu.Unlock()
		cfg.Presignatures = j.record
	})
	a, b := c.Parties[0], c.Parties[1]
	ja, jb := journals[a.ID], journals[b.ID]
	signers := []tss.PartyID{a.ID, b.ID}
	spec := tss.PoolSpec{KeyID: info.ID, Signers: signers, Initiator: a.ID}
	if _, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 2}); err != nil {
		t.Fatal(err)
	}
	ma, mb := ja.of(tss.PresignaturesMade), jb.of(tss.PresignaturesMade)
	if len(ma) != 1 || len(mb) != 1 || len(ma[0].IDs) != 2 || !slices.Equal(ma[0].IDs, mb[0].IDs) ||
		ma[0].Session != mb[0].Session || ma[0].Pool != mb[0].Pool || ma[0].Pool != tss.PoolKey(spec, ma[0].Epoch) ||
		ma[0].Spec.Initiator != a.ID || !slices.Equal(ma[0].Spec.Signers, signers) {
		t.Fatalf("made: a %+v, b %+v; want one batch of the same two presignatures on both", ma, mb)
	}
	made := ma[0].IDs

	d1 := sha256.Sum256([]byte("recorded"))
	sig, err := a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d1[:]}})
	if err != nil {
		t.Fatal(err)
	}
	verifyBoth(t, info.PublicKey, d1[:], sig)
	ua, ub := ja.of(tss.PresignaturesUsed), jb.of(tss.PresignaturesUsed)
	if len(ua) != 1 || len(ub) != 1 || !slices.Equal(ua[0].IDs, ub[0].IDs) || ua[0].IDs[0] != made[0] ||
		ua[0].Session != ub[0].Session || ub[0].Digests[0] != d1 || ub[0].Spec.Initiator != a.ID {
		t.Fatalf("used: a %+v, b %+v; want the first presignature for %x on both", ua, ub, d1[:4])
	}

	// b's journal cannot record any more: b consumes the presignature
	// but its share must not leave it.
	jb.refuse.Store(true)
	var results atomic.Int32
	b.Tamper(func(m *tss.Message) []*tss.Message {
		if m.Type == tss.MsgResult {
			results.Add(1)
		}
		return []*tss.Message{m}
	})
	d2 := sha256.Sum256([]byte("not recorded"))
	_, err = a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d2[:]}})
	var re *tss.RefusedError
	if !errors.As(err, &re) || re.Party != b.ID || !errors.Is(err, tss.ErrNotRecorded) {
		t.Fatalf("signing while b cannot record: %v, want b's refusal wrapping ErrNotRecorded", err)
	}
	if n := results.Load(); n != 0 || jb.refused.Load() != 1 {
		t.Fatalf("b sent %d results and refused %d records; want no result after one refused record", n, jb.refused.Load())
	}
	b.Tamper(nil)
	if st := poolIDs(t, b, ctx, spec); st.Ready != 0 {
		t.Fatalf("b's pool after the unrecorded use: %+v; want the presignature used up", st)
	}
	burned := ja.of(tss.PresignaturesBurned)
	if len(burned) != 1 || burned[0].IDs[0] != made[1] || burned[0].Digests[0] != d2 || burned[0].Reason == "" {
		t.Fatalf("a's burned events: %+v; want the second presignature with the reason", burned)
	}
}
