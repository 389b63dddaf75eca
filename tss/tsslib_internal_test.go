package tss

import (
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/signing"
	"google.golang.org/protobuf/proto"
)

// TestTSSLibProtocol_PanicDoesNotHangTheSession makes tss-lib panic inside
// Update (validation switched off, a round-4 Schnorr response t = 0: tss-lib
// multiplies g by 0 and panics on the point at infinity in round 5). The
// panic is recovered, but it leaves tss-lib's party mutex locked, and the
// next call into the party — the session asks whom it is waiting for when
// it ends — would block for ever, holding a session slot. The protocol
// must fail without touching the party again. A δ sum of zero, which a
// rushing co-signer can force and no validation can refuse, takes tss-lib
// down the same path.
func TestTSSLibProtocol_PanicDoesNotHangTheSession(t *testing.T) {
	sp := newSignPair(t, fixtureShares(t, "2-of-3", 2), 0, 1)
	defer sp.wipe()
	sp.p[0].validator = nil
	msg := sp.next(0, 5)
	msg.payload = rewritePayload(t, msg.payload, func(m proto.Message) {
		m.(*signing.SignRound4Message).ProofT = []byte{0}
	})
	_, err := safeHandle(sp.p[0], msg)
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("got %v, want the recovered tss-lib panic as ErrProtocol", err)
	}
	done := make(chan []PartyID, 1)
	go func() { done <- sp.p[0].waitingFor() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("waitingFor blocks on the mutex the panic left locked")
	}
	if _, err := safeHandle(sp.p[0], msg); !errors.Is(err, ErrProtocol) {
		t.Fatalf("a message after the panic: got %v, want ErrProtocol", err)
	}
}

// TestSign_DeltaSumZeroEndsTheSession is the rushing attack that reaches
// the panic above with validation on: B waits for A's δ_A and sends
// δ_B = q − δ_A, a well-formed scalar. The sum is 0, tss-lib's inverse of
// it is nil and round 5 panics inside Update. The session fails (GG18
// cannot tell who made the sum zero, so no one is named) and does not hang.
func TestSign_DeltaSumZeroEndsTheSession(t *testing.T) {
	sp := newSignPair(t, fixtureShares(t, "2-of-3", 2), 0, 1)
	defer sp.wipe()
	var stash *routed
	var deltaA *big.Int
	for deltaA == nil || stash == nil {
		if len(sp.queue) == 0 {
			t.Fatal("no round-3 messages")
		}
		r := sp.queue[0]
		sp.queue = sp.queue[1:]
		if r.in.round == 4 {
			rewritePayload(t, r.in.payload, func(m proto.Message) {
				if r.to == 1 {
					deltaA = new(big.Int).SetBytes(m.(*signing.SignRound3Message).Theta)
				}
			})
			if r.to == 0 {
				stash = &r
				continue
			}
		}
		if err := sp.deliver(r); err != nil {
			t.Fatalf("honest session failed: %v", err)
		}
	}
	stash.in.payload = rewritePayload(t, stash.in.payload, func(m proto.Message) {
		m.(*signing.SignRound3Message).Theta = new(big.Int).Sub(curveQ, deltaA).Bytes()
	})
	if err := sp.deliver(*stash); err != nil {
		t.Fatalf("δ_B = q − δ_A was refused (%v); it is a valid scalar", err)
	}
	done := make(chan error, 1)
	go func() {
		err, _ := sp.finish()
		sp.p[0].waitingFor()
		done <- err
	}()
	select {
	case err := <-done:
		var ce *CulpritError
		if !errors.Is(err, ErrProtocol) || errors.As(err, &ce) {
			t.Fatalf("got %v, want ErrProtocol naming no one", err)
		}
		t.Logf("session ended with: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the session hangs after tss-lib's panic")
	}
}
