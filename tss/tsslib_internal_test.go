package tss

import (
	"errors"
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
