package tss_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// TestGG20_InitiatorsShareSignersWithoutBurning: every signer of a signer
// set initiates GG20 signatures at the same time. When all picked from one
// shared pool, each initiator chose the next presignature from its own view
// of it, the others refused it as already reserved, and most requests
// failed with the presignature burned. Each initiator spends only the
// presignatures it made: every request signs, none is burned, no R
// repeats, and every pool ends empty and without discards on every signer.
func TestGG20_InitiatorsShareSignersWithoutBurning(t *testing.T) {
	c, info, ctx := gg20Cluster(t, nil)
	const each = 4
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d initiators", n), func(t *testing.T) {
			signers := c.IDs()[:n]
			for _, p := range signers {
				if _, err := c.Party(p).Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: each}); err != nil {
					t.Fatalf("presign by %s: %v", p, err)
				}
			}
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				errs []error
				rs   = make(map[string]bool)
			)
			for _, p := range signers {
				for i := range each {
					wg.Add(1)
					go func() {
						defer wg.Done()
						d := sha256.Sum256(fmt.Appendf(nil, "%d initiators: %s request %d", n, p, i))
						sig, err := c.Party(p).Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}})
						mu.Lock()
						defer mu.Unlock()
						if err != nil {
							errs = append(errs, fmt.Errorf("%s request %d: %w", p, i, err))
							return
						}
						verifyBoth(t, info.PublicKey, d[:], sig)
						r := string(sig.R[:])
						if rs[r] {
							errs = append(errs, fmt.Errorf("%s request %d: R repeated", p, i))
						}
						rs[r] = true
					}()
				}
			}
			wg.Wait()
			if len(errs) > 0 {
				t.Fatalf("%d of %d concurrent requests failed: %v", len(errs), n*each, errors.Join(errs...))
			}
			for _, holder := range signers {
				for _, init := range signers {
					st := poolIDs(t, c.Party(holder), ctx, tss.PoolSpec{KeyID: info.ID, Signers: signers, Initiator: init})
					if st.Ready != 0 || st.Reserved != 0 || st.Used != each || st.Discarded != 0 {
						t.Errorf("%s's view of %s's pool: %+v; want %d used, none left, none discarded", holder, init, st, each)
					}
				}
			}
		})
	}
}

// TestGG20_SpendingAnotherInitiatorsPresignatureIsRefused: a co-signer
// that names presignatures of another initiator's pool (to burn them, or
// to reuse one it saw) is refused by every signer that knows the pool,
// before anything is consumed; the pool counts the attempt and names the
// co-signer, and its owner still signs with the presignature.
func TestGG20_SpendingAnotherInitiatorsPresignatureIsRefused(t *testing.T) {
	c, info, ctx := gg20Cluster(t, nil)
	a, b := c.Parties[0], c.Parties[1]
	signers := []tss.PartyID{a.ID, b.ID}
	if _, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 1}); err != nil {
		t.Fatal(err)
	}
	aPool := tss.PoolSpec{KeyID: info.ID, Signers: signers, Initiator: a.ID}
	ids, err := tss.ReadyIDs(ctx, b.Engine, aPool, info.Epoch)
	if err != nil || len(ids) != 1 {
		t.Fatalf("b's copy of a's pool: %v, %v", ids, err)
	}
	// b's own engine checks its proposal like every signer does.
	d := sha256.Sum256([]byte("burn a's presignature"))
	_, err = b.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}, PresignatureIDs: ids})
	if !errors.Is(err, tss.ErrNotYourPresignature) {
		t.Fatalf("b's engine spending a's presignature: got %v, want ErrNotYourPresignature", err)
	}
	// A hostile b sends the proposal without that check.
	b.Stop()
	idb, err := hex.DecodeString(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	prop := tss.Proposal{Version: 1, Op: tss.OpOnline, Initiator: b.ID, KeyID: info.ID, Parties: tss.SortParties(signers),
		Payload: append(append([]byte{0, 0, 0, 1}, idb...), d[:]...)}
	rand.Read(prop.Nonce[:])
	answer := proposeRaw(t, ctx, b, []tss.PartyID{a.ID}, &prop)
	if answer.Type != tss.MsgRefuse || !strings.HasPrefix(string(answer.Payload), "not_your_presignature\n") {
		t.Fatalf("a answered b's proposal to spend a's presignature with %s %q, want a not_your_presignature refusal", answer.Type, answer.Payload)
	}
	st := poolIDs(t, a, ctx, aPool)
	if st.Ready != 1 || st.Used != 0 || st.Foreign != 1 || st.ForeignBy != b.ID {
		t.Fatalf("a's pool after the attempt: %+v; want 1 ready, 1 foreign attempt by %s", st, b.ID)
	}
	b = c.Restart(1, nil)
	if st := poolIDs(t, b, ctx, aPool); st.Ready != 1 || st.Used != 0 {
		t.Fatalf("b's copy of a's pool after the attempt: %+v; want it untouched", st)
	}
	sig, err := a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}})
	if err != nil {
		t.Fatalf("a signing with its own presignature after the attempt: %v", err)
	}
	verifyBoth(t, info.PublicKey, d[:], sig)
}

// proposeRaw sends prop from as (whose engine is stopped) to the parties
// to and returns the first answer.
func proposeRaw(t *testing.T, ctx context.Context, as *testParty, to []tss.PartyID, prop *tss.Proposal) *tss.Message {
	t.Helper()
	payload, err := json.Marshal(prop)
	if err != nil {
		t.Fatal(err)
	}
	sid := prop.SessionID()
	if err := as.Endpoint.Send(ctx, &tss.Message{Session: sid, Type: tss.MsgPropose, From: as.ID, To: to, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		in, err := as.Endpoint.Receive(rctx)
		if err != nil {
			t.Fatalf("no answer to the proposal from %s: %v", as.ID, err)
		}
		if in.Session == sid {
			return in
		}
	}
}

// TestGG20_ConcurrentRequestsPastTheCoSignersBoundWaitInsteadOfBurning:
// one initiator sends more concurrent GG20 requests than its co-signer
// runs for one proposer (MaxSessionsPerPeer). The co-signer refused the
// ones over its bound as busy, and each refusal burned the initiator's
// presignature, which it had consumed while the proposal travelled. The
// initiator now keeps its sessions with each co-signer under the bound
// and the other requests wait: every request signs, the co-signer refuses
// none, and nothing is burned.
func TestGG20_ConcurrentRequestsPastTheCoSignersBoundWaitInsteadOfBurning(t *testing.T) {
	const perPeer, requests = 2, 12
	c, info, ctx := gg20Cluster(t, func(cfg *tss.Config) { cfg.MaxSessionsPerPeer = perPeer })
	a, b := c.Parties[0], c.Parties[1]
	signers := []tss.PartyID{a.ID, b.ID}
	if _, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: requests}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, requests)
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			d := sha256.Sum256(fmt.Appendf(nil, "request %d", i))
			sig, err := a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}})
			if err != nil {
				errs <- fmt.Errorf("request %d: %w", i, err)
				return
			}
			verifyBoth(t, info.PublicKey, d[:], sig)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := b.Engine.Stats().OverQuota; n != 0 {
		t.Errorf("the co-signer refused %d proposals over its bound", n)
	}
	st := poolIDs(t, a, ctx, tss.PoolSpec{KeyID: info.ID, Signers: signers})
	if st.Used != requests || st.Burned != 0 || st.Ready != 0 || st.Reserved != 0 {
		t.Errorf("initiator's pool after %d concurrent requests: %+v; want all used, none burned", requests, st)
	}
}

// TestGG20_RequestWaitingForASlotEndsWithItsContext: a request that waits
// for room with its co-signer ends with its context, as busy, without
// reserving a presignature.
func TestGG20_RequestWaitingForASlotEndsWithItsContext(t *testing.T) {
	hold := make(chan struct{})
	held := make(chan struct{}, 1)
	c, info, ctx := gg20Cluster(t, func(cfg *tss.Config) {
		cfg.MaxSessionsPerPeer = 2 // the initiator runs one session at a time with each co-signer
		self := cfg.Network.Self()
		cfg.Policy = func(ctx context.Context, p *tss.Proposal) error {
			// The co-signer holds the first online session it is asked to
			// join until the test lets it go.
			if p.Op == tss.OpOnline && p.Initiator != self {
				select {
				case held <- struct{}{}:
					select {
					case <-hold:
					case <-ctx.Done():
						return ctx.Err()
					}
				default:
				}
			}
			return nil
		}
	})
	a := c.Parties[0]
	signers := []tss.PartyID{a.ID, c.Parties[1].ID}
	if _, err := a.Engine.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: signers, Count: 2}); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() {
		d := sha256.Sum256([]byte("first"))
		_, err := a.Engine.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}})
		first <- err
	}()
	// held is full once b's policy holds the first session.
	for len(held) == 0 {
		time.Sleep(time.Millisecond)
	}
	spec := tss.PoolSpec{KeyID: info.ID, Signers: signers}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	d := sha256.Sum256([]byte("second"))
	_, err := a.Engine.SignOnline(short, tss.OnlineRequest{KeyID: info.ID, Signers: signers, Digests: [][]byte{d[:]}})
	if !errors.Is(err, tss.ErrBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second request while the first holds the slot: %v; want ErrBusy and the context's deadline", err)
	}
	if st := poolIDs(t, a, ctx, spec); st.Ready != 1 || st.Burned != 0 {
		t.Errorf("pool while the first request runs: %+v; want the waiting request to have reserved nothing", st)
	}
	close(hold)
	if err := <-first; err != nil {
		t.Fatalf("first request: %v", err)
	}
}
