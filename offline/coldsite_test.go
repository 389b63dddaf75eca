package offline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/tss"
)

// tapNet is a tss.Network that keeps a copy of every message its engine
// sends.
type tapNet struct {
	*Network
	mu   sync.Mutex
	sent []*tss.Message
}

func (n *tapNet) Send(ctx context.Context, m *tss.Message) error {
	cp := *m
	cp.To = slices.Clone(m.To)
	cp.Payload = slices.Clone(m.Payload)
	n.mu.Lock()
	n.sent = append(n.sent, &cp)
	n.mu.Unlock()
	return n.Network.Send(ctx, m)
}

// find returns the first message sent of type typ in session sid, or nil.
func (n *tapNet) find(sid tss.SessionID, typ tss.MessageType) *tss.Message {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.sent {
		if m.Session == sid && m.Type == typ {
			return m
		}
	}
	return nil
}

// fileSite is one site's engine over its bundle network, restartable over
// the same HSM and store (or a store restored from a backup).
type fileSite struct {
	t       *testing.T
	site    *testSite
	members []*testSite
	index   int
	net     *Network
	tap     *tapNet
	eng     *tss.Engine
	stopEng func()
}

func startFileSite(t *testing.T, sites []*testSite, i int) *fileSite {
	f := &fileSite{t: t, site: sites[i], members: sites, index: i}
	f.start()
	return f
}

func (f *fileSite) start() {
	t := f.t
	t.Helper()
	ctx := context.Background()
	f.net = newNet(t, f.site, f.members)
	f.tap = &tapNet{Network: f.net}
	pool, err := tss.NewPreParamsPool(tss.PreParamsConfig{Store: f.site.Store})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := pool.Ready(ctx); err != nil {
		t.Fatal(err)
	} else if n == 0 {
		pp, err := fixtures.PreParams(f.index)
		if err != nil {
			t.Fatal(err)
		}
		if err := pool.Add(ctx, pp); err != nil {
			t.Fatal(err)
		}
	}
	f.eng, err = tss.New(tss.Config{Network: f.tap, Store: f.site.Store, PreParams: pool, RoundTimeout: 2 * time.Minute, JoinTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ectx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.eng.Run(ectx); close(done) }()
	var once sync.Once
	f.stopEng = func() {
		once.Do(func() {
			cancel()
			<-done
			f.net.Close()
		})
	}
	t.Cleanup(f.stopEng)
}

// restart stops the engine and its network and starts both again: what
// a site restarted after a crash is.
func (f *fileSite) restart() {
	f.stopEng()
	f.start()
}

// carry moves one bundle from one site to another, as the operator does,
// and returns the header, or the error of the import.
func carry(t *testing.T, from, to *fileSite) (Header, error) {
	t.Helper()
	b, err := from.net.Export(context.Background(), to.net.Self())
	if err != nil {
		t.Fatal(err)
	}
	if b == nil {
		t.Fatalf("%s has no bundle for %s", from.net.Self(), to.net.Self())
	}
	return to.net.Import(context.Background(), b)
}

// answerTo waits for site f's engine to answer the proposal of session sid
// and returns the answer (a refusal or a result).
func answerTo(t *testing.T, f *fileSite, sid tss.SessionID) *tss.Message {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if m := f.tap.find(sid, tss.MsgResult); m != nil {
			return m
		}
		if m := f.tap.find(sid, tss.MsgRefuse); m != nil {
			return m
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s did not answer the proposal of session %s in a minute", f.net.Self(), sid.Short())
	return nil
}

// TestProtocol_ColdSiteReleasesOneSharePerPresignature is the once-only
// rule of GG20 presignatures on a cold site, attacked by its co-signer
// through bundle files: the co-signer sends the cold site, in new and
// correctly signed bundles, the online proposal it already answered,
// first after the cold site restarted (which forgets the sessions it
// saw), then with another digest after the cold site's store was restored
// from a backup taken before the signature. Two shares for one
// presignature give the nonce and then the key. The cold site's HSM ledger
// still marks the presignature used: it refuses both times, naming it, and
// releases no second share.
func TestProtocol_ColdSiteReleasesOneSharePerPresignature(t *testing.T) {
	if testing.Short() {
		t.Skip("GG20 over files skipped with -short")
	}
	sites := newSites(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	a, cold := startFileSite(t, sites, 0), startFileSite(t, sites, 1)
	c := &courier{nets: []*Network{a.net, cold.net}}
	cctx, ccancel := context.WithCancel(ctx)
	cdone := make(chan struct{})
	go func() { c.run(cctx); close(cdone) }()
	stopCourier := func() {
		ccancel()
		<-cdone
		if _, err := c.take(); err != nil {
			t.Fatalf("courier: %v", err)
		}
	}

	ids := []tss.PartyID{a.net.Self(), cold.net.Self()}
	slices.Sort(ids)
	info, err := a.eng.Keygen(ctx, tss.KeygenRequest{Parties: ids, Threshold: 2})
	if err != nil {
		stopCourier()
		t.Fatal(err)
	}
	if _, err := a.eng.Presign(ctx, tss.PresignRequest{KeyID: info.ID, Signers: ids, Count: 1, Parallel: 1}); err != nil {
		stopCourier()
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the last presign bundles settle
	backup := cold.site.CopyStore(t)
	d1 := sha256.Sum256([]byte("cold withdrawal 1"))
	sig, err := a.eng.SignOnline(ctx, tss.OnlineRequest{KeyID: info.ID, Signers: ids, Digests: [][]byte{d1[:]}})
	if err != nil {
		stopCourier()
		t.Fatal(err)
	}
	if err := sig.Verify(); err != nil {
		t.Fatal(err)
	}
	stopCourier()
	var recorded *tss.Message
	a.tap.mu.Lock()
	for _, m := range a.tap.sent {
		if m.Type == tss.MsgPropose {
			recorded = m // the last proposal: the online signature's
		}
	}
	a.tap.mu.Unlock()
	var prop tss.Proposal
	if recorded == nil || json.Unmarshal(recorded.Payload, &prop) != nil || prop.Op != tss.OpOnline || len(prop.Payload) != 4+64 {
		t.Fatalf("no online proposal of one presignature recorded: %+v", recorded)
	}
	presigID := prop.Payload[4 : 4+8]

	refusedAsUsed := func(what string, sid tss.SessionID) {
		t.Helper()
		ans := answerTo(t, cold, sid)
		if ans.Type != tss.MsgRefuse {
			t.Fatalf("%s: the cold site answered with %s (%d bytes), want a refusal", what, ans.Type, len(ans.Payload))
		}
		reason := string(ans.Payload)
		if !strings.HasPrefix(reason, "presignature_used\n") || !strings.Contains(reason, hex.EncodeToString(presigID)) {
			t.Fatalf("%s: refusal %q does not say that presignature %x was used", what, reason, presigID)
		}
	}

	// The same proposal again, after the cold site restarted.
	cold.restart()
	if err := a.net.Send(ctx, recorded); err != nil {
		t.Fatal(err)
	}
	if _, err := carry(t, a, cold); err != nil {
		t.Fatalf("the replayed proposal's new bundle: %v", err)
	}
	refusedAsUsed("the same proposal after a restart", recorded.Session)

	// Another digest with the same presignature, after the cold site's
	// store was restored from before the signature.
	cold.stopEng()
	cold.site.ReplaceStore(t, backup)
	cold.start()
	second := prop
	second.Payload = slices.Clone(prop.Payload)
	d2 := sha256.Sum256([]byte("cold withdrawal 2"))
	copy(second.Payload[4+32:], d2[:])
	second.Nonce[0] ^= 0xff
	payload, err := json.Marshal(&second)
	if err != nil {
		t.Fatal(err)
	}
	msg := &tss.Message{Session: second.SessionID(), Type: tss.MsgPropose, From: a.net.Self(), To: []tss.PartyID{cold.net.Self()}, Payload: payload}
	if err := a.net.Send(ctx, msg); err != nil {
		t.Fatal(err)
	}
	b, err := a.net.Export(ctx, cold.net.Self())
	if err != nil || b == nil {
		t.Fatalf("export the second proposal: %v", err)
	}
	// The restored store remembers an older last bundle from a: the
	// operator skips the ones it lost with the restore, as the error says.
	if _, err := cold.net.Import(ctx, b); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("importing a's next bundle into the restored cold site: %v, want ErrOutOfOrder (its store forgot later bundles)", err)
	}
	bd, perr := parseBundle(b)
	if perr != nil {
		t.Fatal(perr)
	}
	if err := cold.net.Skip(ctx, a.net.Self(), bd.Sequence-1); err != nil {
		t.Fatal(err)
	}
	if _, err := cold.net.Import(ctx, b); err != nil {
		t.Fatalf("import after the skip: %v", err)
	}
	refusedAsUsed("another digest after a restore", msg.Session)
	if m := cold.tap.find(msg.Session, tss.MsgResult); m != nil {
		t.Fatal("the restored cold site released a share for a used presignature")
	}

	// The restored store also forgot the bundles the cold site sent: its
	// next one reuses a number a already accepted and is refused. Its
	// operator skips past the number the refusal names.
	b, err = cold.net.Export(ctx, a.net.Self())
	if err != nil || b == nil {
		t.Fatalf("export the refusal: %v", err)
	}
	_, err = a.net.Import(ctx, b)
	if !errors.Is(err, ErrReplayed) {
		t.Fatalf("a imported a bundle numbered again by the restored cold site: %v, want ErrReplayed", err)
	}
	last := a.net.state.Recv[cold.net.Self()]
	if !strings.Contains(err.Error(), fmt.Sprintf("bundle %d ", last)) {
		t.Fatalf("the refusal %q does not name the last bundle a accepted (%d)", err, last)
	}
	if err := cold.net.SkipSent(ctx, a.net.Self(), last); err != nil {
		t.Fatal(err)
	}
	if err := cold.net.Send(ctx, &tss.Message{Session: msg.Session, Type: tss.MsgRefuse, From: cold.net.Self(), To: []tss.PartyID{a.net.Self()}, Payload: []byte("presignature_used\nagain")}); err != nil {
		t.Fatal(err)
	}
	if h, err := carry(t, cold, a); err != nil || h.Sequence != last+1 {
		t.Fatalf("the cold site's bundle after the skip: sequence %d, %v; want %d accepted", h.Sequence, err, last+1)
	}
}
