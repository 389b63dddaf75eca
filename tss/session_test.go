package tss_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// subsets returns every subset of ids of size k, in order.
func subsets(ids []tss.PartyID, k int) [][]tss.PartyID {
	var out [][]tss.PartyID
	var rec func(start int, cur []tss.PartyID)
	rec = func(start int, cur []tss.PartyID) {
		if len(cur) == k {
			out = append(out, append([]tss.PartyID(nil), cur...))
			return
		}
		for i := start; i < len(ids); i++ {
			rec(i+1, append(cur, ids[i]))
		}
	}
	rec(0, nil)
	return out
}

func TestKeygenAndSign_AllSubsets(t *testing.T) {
	// 2-of-3 runs in TestKeygenAndSign_2of3 and 3-of-5 over every subset in
	// TestGG20_3of5_AllSubsets, with GG18 and GG20 on the same key. 2-of-2
	// is the smallest committee (tss-lib's t = 1 with two parties).
	for _, tc := range []struct{ m, n int }{{2, 2}} {
		t.Run(fmt.Sprintf("%d-of-%d", tc.m, tc.n), func(t *testing.T) {
			if testing.Short() && tc.n > 3 {
				t.Skip("3-of-5 is slow")
			}
			c := newCluster(t, tc.n, nil)
			c.FeedPreParams(1)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			info, err := c.Parties[tc.n-1].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: tc.m})
			if err != nil {
				t.Fatal(err)
			}
			if info.Threshold != tc.m || len(info.Parties) != tc.n || len(info.PublicKey) != 33 || len(info.ChainCode) != 32 {
				t.Fatalf("bad key info %+v", info)
			}
			for i, signers := range subsets(c.IDs(), tc.m) {
				digest := sha256.Sum256([]byte(fmt.Sprintf("subset %d", i)))
				initiator := c.Party(signers[len(signers)-1])
				sig, err := initiator.Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: signers})
				if err != nil {
					t.Fatalf("sign with %v: %v", signers, err)
				}
				verifyBoth(t, info.PublicKey, digest[:], sig)
			}
		})
	}
}

func TestKeygen_RefusesOneOfN(t *testing.T) {
	c := newCluster(t, 2, nil)
	c.FeedPreParams(1)
	_, err := c.Parties[0].Engine.Keygen(context.Background(), tss.KeygenRequest{Parties: c.IDs(), Threshold: 1})
	if !errors.Is(err, tss.ErrBadRequest) || !strings.Contains(err.Error(), "M must be 2 to 2") {
		t.Fatalf("1-of-2 keygen: got %v, want ErrBadRequest", err)
	}
	if n, _ := c.Parties[0].Pool.Ready(context.Background()); n != 1 {
		t.Fatal("a refused keygen consumed pre-parameters")
	}
}

func TestSign_DerivedPath(t *testing.T) {
	c := newCluster(t, 2, nil)
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("derived"))
	sig, err := c.Parties[1].Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Path: "m/0/7"})
	if err != nil {
		t.Fatal(err)
	}
	parent, err := secp256k1.ParsePubKey(info.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	path, _ := hd.ParsePath("m/0/7")
	child, _, _, err := hd.Derive(parent, info.ChainCode, path)
	if err != nil {
		t.Fatal(err)
	}
	if string(sig.PublicKey) != string(child.SerializeCompressed()) {
		t.Fatal("signature is not reported under the derived key")
	}
	verifyBoth(t, child.SerializeCompressed(), digest[:], sig)

	// A hardened step is refused before any protocol message is sent.
	_, err = c.Parties[1].Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Path: "m/0'/7"})
	if !errors.Is(err, hd.ErrHardened) || !errors.Is(err, tss.ErrBadRequest) {
		t.Fatalf("hardened path: got %v", err)
	}
}

func TestSign_RefusalsNameTheRefusingParty(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs()[:2], Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	outsider := c.Parties[2]

	t.Run("initiator checks its own request", func(t *testing.T) {
		for _, tc := range []struct {
			req  tss.SignRequest
			want error
		}{
			{tss.SignRequest{KeyID: info.ID, Digest: digest[:31]}, tss.ErrBadRequest},
			{tss.SignRequest{KeyID: info.ID, Digest: make([]byte, 32)}, tss.ErrBadRequest},
			{tss.SignRequest{KeyID: "00000000000000000000000000000000", Digest: digest[:]}, tss.ErrUnknownKey},
			{tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: []tss.PartyID{c.Parties[0].ID}}, tss.ErrBadRequest},
			{tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: []tss.PartyID{c.Parties[0].ID, outsider.ID}}, tss.ErrNotInCommittee},
		} {
			if _, err := c.Parties[0].Engine.Sign(ctx, tc.req); !errors.Is(err, tc.want) {
				t.Errorf("%+v: got %v, want %v", tc.req, err, tc.want)
			}
		}
	})
	t.Run("a party that does not know the key refuses", func(t *testing.T) {
		// party 2 was not in the keygen; party 0 proposes a session with it by
		// running keygen-like signing on a key only it... instead, party 2
		// proposes signing with a key it does not hold: its own check refuses.
		_, err := outsider.Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: []tss.PartyID{outsider.ID, c.Parties[0].ID}})
		if !errors.Is(err, tss.ErrUnknownKey) {
			t.Fatalf("got %v, want ErrUnknownKey", err)
		}
	})
	t.Run("policy refusal reaches the initiator", func(t *testing.T) {
		c2 := newCluster(t, 2, func(cfg *tss.Config) {
			cfg.Policy = func(ctx context.Context, p *tss.Proposal) error {
				if p.Op == tss.OpSign && string(p.Evidence) != "approved" {
					return errors.New("withdrawal lacks a second approval")
				}
				return nil
			}
		})
		c2.FeedPreParams(1)
		info2, err := c2.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c2.IDs(), Threshold: 2})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c2.Parties[0].Engine.Sign(ctx, tss.SignRequest{KeyID: info2.ID, Digest: digest[:], Evidence: []byte("approved")})
		if err != nil {
			t.Fatalf("approved request: %v", err)
		}
		// The initiator's own policy refuses an unapproved request before
		// anything is sent.
		_, err = c2.Parties[1].Engine.Sign(ctx, tss.SignRequest{KeyID: info2.ID, Digest: digest[:], Evidence: []byte("no")})
		if err == nil || !strings.Contains(err.Error(), "second approval") {
			t.Fatalf("unapproved request: got %v", err)
		}
		// With a lenient initiator, the peer's policy refusal travels back
		// and names the peer.
		lenient := c2.Restart(1, func(cfg *tss.Config) { cfg.Policy = nil })
		_, err = lenient.Engine.Sign(ctx, tss.SignRequest{KeyID: info2.ID, Digest: digest[:], Evidence: []byte("no")})
		var re *tss.RefusedError
		if !errors.As(err, &re) || re.Party != c2.Parties[0].ID || !strings.Contains(re.Reason, "second approval") || !errors.Is(err, tss.ErrPolicy) {
			t.Fatalf("unapproved request from a lenient initiator: got %v", err)
		}
	})
}

func TestSign_PeerRefusalIsReported(t *testing.T) {
	c := newCluster(t, 2, func(cfg *tss.Config) {})
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Party 1 loses its share (for example a restore from an old backup).
	if err := c.Parties[1].Store.Delete(ctx, "share", info.ID); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	_, err = c.Parties[0].Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:]})
	var re *tss.RefusedError
	if !errors.As(err, &re) || re.Party != c.Parties[1].ID || !strings.Contains(re.Reason, "unknown key") || !errors.Is(err, tss.ErrUnknownKey) {
		t.Fatalf("got %v, want a refusal by %s for an unknown key", err, c.Parties[1].ID)
	}
}

func TestSign_SilentPartyTimesOut(t *testing.T) {
	const timeout = 5 * time.Second
	c := newCluster(t, 3, func(cfg *tss.Config) { cfg.RoundTimeout = 60 * time.Second })
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	// A fresh engine with a short timeout on party 0; party 1 goes silent
	// after joining: it accepts, then sends nothing.
	silent := c.Parties[1]
	silent.Tamper(func(m *tss.Message) []*tss.Message {
		if m.Type == tss.MsgProtocol || m.Type == tss.MsgEcho {
			return nil
		}
		return []*tss.Message{m}
	})
	fast := c.Restart(0, func(cfg *tss.Config) { cfg.RoundTimeout = timeout })
	digest := sha256.Sum256([]byte("x"))
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := fast.Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: []tss.PartyID{fast.ID, silent.ID}})
		done <- err
	}()
	// While it waits, the engine's session snapshot says for whom.
	sawWaiting := false
	for !sawWaiting {
		select {
		case err = <-done:
			t.Fatalf("signing ended before the snapshot showed the wait: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		for _, s := range fast.Engine.Sessions() {
			if s.Op == tss.OpSign && s.Phase == "running" && len(s.Waiting) == 1 && s.Waiting[0] == silent.ID {
				sawWaiting = true
			}
		}
	}
	err = <-done
	took := time.Since(start)
	var te *tss.RoundTimeoutError
	if !errors.As(err, &te) || len(te.Parties) != 1 || te.Parties[0] != silent.ID {
		t.Fatalf("got %v, want a timeout naming %s", err, silent.ID)
	}
	t.Logf("failed after %s: %v", took, err)
	if took > 4*timeout {
		t.Errorf("timeout of %s took %s to fire", timeout, took)
	}
}

func TestSession_DuplicatesAndReplaysAreDropped(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.FeedPreParams(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Party 2 records everything it sends in the first signing session and
	// sends each message twice.
	var recorded []*tss.Message
	replayer := c.Parties[2]
	info, err := c.Parties[0].Engine.Keygen(ctx, tss.KeygenRequest{Parties: c.IDs(), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	replayer.Tamper(func(m *tss.Message) []*tss.Message {
		cp := *m
		recorded = append(recorded, &cp)
		return []*tss.Message{m, m}
	})
	digest := sha256.Sum256([]byte("first"))
	signers := []tss.PartyID{c.Parties[0].ID, replayer.ID}
	if _, err := c.Parties[0].Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest[:], Signers: signers}); err != nil {
		t.Fatal(err)
	}
	if got := c.Parties[0].Engine.Stats().Duplicate; got == 0 {
		t.Fatal("duplicates were not counted")
	}
	// Now it replays the whole first session during a second one.
	old := recorded
	replayer.Tamper(func(m *tss.Message) []*tss.Message {
		out := []*tss.Message{m}
		if m.Type == tss.MsgAccept {
			out = append(out, old...)
		}
		return out
	})
	before := c.Parties[0].Engine.Stats()
	digest2 := sha256.Sum256([]byte("second"))
	sig, err := c.Parties[0].Engine.Sign(ctx, tss.SignRequest{KeyID: info.ID, Digest: digest2[:], Signers: signers})
	if err != nil {
		t.Fatalf("replays disturbed the second session: %v", err)
	}
	verifyBoth(t, info.PublicKey, digest2[:], sig)
	after := c.Parties[0].Engine.Stats()
	if after.FinishedSession <= before.FinishedSession {
		t.Fatalf("replayed messages of a finished session were not counted: %+v -> %+v", before, after)
	}
}
