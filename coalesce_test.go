package keyquorum_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/tss"
)

// TestNode_ConcurrentGG20RequestsShareSessions: GG20 requests that a site
// gets while its online sessions with a co-signer run leave together in one
// session over libp2p; each is checked and logged on its own (the
// co-signer writes one sign.authorize entry per request, naming the
// session that carried it, before its one presig.used entry for them all)
// and each gets its own signature.
func TestNode_ConcurrentGG20RequestsShareSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("keygen between three sites takes tens of seconds")
	}
	const waiting = 6
	// b holds the first online request it is asked about; it checks one
	// proposer's proposals in order, so a's second session waits behind
	// it, and the requests after those wait at a.
	var calls atomic.Int64
	held, release := make(chan struct{}, 1), make(chan struct{})
	sites := newSites(t, 3)
	a, b, c := sites[0], sites[1], sites[2]
	b.cfg.Policy = func(ctx context.Context, p *tss.Proposal) error {
		if p.Op == tss.OpOnline && p.Initiator != b.id && calls.Add(1) == 1 {
			held <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	for _, s := range sites {
		s.start(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	key, err := a.node.Keygen(ctx, keyquorum.KeygenRequest{Parties: ids(a, b, c), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := secp256k1.ParsePubKey(key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ab := ids(a, b)
	if _, err := a.node.Presign(ctx, keyquorum.PresignRequest{KeyID: key.ID, Signers: ab, Count: 2 + waiting}); err != nil {
		t.Fatal(err)
	}
	eng := keyquorum.EngineOf(a.node)
	digests := make([][32]byte, 2+waiting)
	sigs := make([]*keyquorum.Signature, len(digests))
	errs := make([]error, len(digests))
	var wg sync.WaitGroup
	send := func(i int) {
		digests[i] = sha256.Sum256(fmt.Appendf(nil, "coalesced %d", i))
		wg.Go(func() {
			sigs[i], errs[i] = a.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digests[i],
				SignOptions: keyquorum.SignOptions{Signers: ab, Protocol: keyquorum.ProtocolGG20}})
		})
	}
	send(0)
	<-held
	send(1)
	waitUntil(t, "a's second session to start", func() bool { return eng.CoalesceStats().Sessions == 2 })
	for i := 2; i < len(digests); i++ {
		send(i)
	}
	waitUntil(t, "the requests to wait at a", func() bool { return eng.CoalesceStats().Waiting == waiting })
	close(release)
	wg.Wait()
	rs := map[[32]byte]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		verifyIndependently(t, sigs[i], digests[i], pub)
		if rs[sigs[i].R] {
			t.Fatalf("request %d repeats an r", i)
		}
		rs[sigs[i].R] = true
	}
	st, err := a.node.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cs := st.Coalescing; cs == nil || cs.Sessions != 3 || cs.Requests != 2+waiting || cs.Largest != waiting || cs.Waiting != 0 {
		t.Fatalf("a's status, coalescing: %+v; want the %d waiting requests in one session", cs, waiting)
	}
	// b authorized each request on its own and logged it, all before it
	// logged the one use of their presignatures.
	eb := auditEntries(t, ctx, b)
	var used []int
	for i, e := range entriesOf(eb, "presig.used", nil) {
		if len(strings.Split(e.Fields["presignatures"], ",")) == waiting {
			used = append(used, i)
		}
	}
	if len(used) != 1 {
		t.Fatalf("b logged %d uses of %d presignatures; want one", len(used), waiting)
	}
	u := entriesOf(eb, "presig.used", nil)[used[0]]
	auth := entriesOf(eb, "sign.authorize", map[string]string{"session": u.Fields["session"]})
	if len(auth) != waiting {
		t.Fatalf("b's authorizations in the coalesced session: %d; want one per request (%d)", len(auth), waiting)
	}
	seen := map[string]bool{}
	for _, e := range auth {
		if e.Seq >= u.Seq || seen[e.Fields["digests"]] {
			t.Fatalf("authorization %s: want one per digest, before presig.used (entry %d)", e.JSON(), u.Seq)
		}
		seen[e.Fields["digests"]] = true
	}
}

// waitUntil polls cond until it holds, failing the test after a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
