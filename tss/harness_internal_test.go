package tss

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/bnb-chain/tss-lib/v2/common"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	tsslib "github.com/bnb-chain/tss-lib/v2/tss"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/keyquorum/keyquorum/internal/fixtures"
)

// fixtureShares loads the tss-lib keygen fixtures of a committee ("2-of-3",
// made by internal/cmd/genkeygen) as shares of parties P0, P1, ... in the
// order of the fixture files.
func fixtureShares(t testing.TB, committee string, threshold int) []*keyShare {
	t.Helper()
	var datas []*keygen.LocalPartySaveData
	for i := 0; ; i++ {
		b, err := os.ReadFile(filepath.Join(fixtures.Dir(), "keygen", committee, fmt.Sprintf("party-%d.json", i)))
		if errors.Is(err, os.ErrNotExist) && i > 0 {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var d keygen.LocalPartySaveData
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		datas = append(datas, &d)
	}
	var parties []PartyID
	var ids []string
	for i, d := range datas {
		parties = append(parties, PartyID(fmt.Sprintf("P%d", i)))
		ids = append(ids, d.ShareID.Text(16))
	}
	var out []*keyShare
	for i, d := range datas {
		for _, x := range d.BigXj {
			x.SetCurve(tsslib.S256())
		}
		d.ECDSAPub.SetCurve(tsslib.S256())
		pub, err := compressedPoint(d.ECDSAPub.X(), d.ECDSAPub.Y())
		if err != nil {
			t.Fatal(err)
		}
		s := &keyShare{
			Format: shareFormat, KeyID: "fixture-" + committee, Threshold: threshold,
			Parties: parties, ShareIDs: ids, Self: parties[i], PublicKey: pub,
			ChainCode: make([]byte, 32), Epoch: 1, Data: d,
		}
		if err := s.validate(); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// routed is a protocol message on its way to party `to` of a pair.
type routed struct {
	to int
	in inMsg
}

// signPair runs GG18 signing between two in-process parties, A (index 0)
// and B (index 1), without engine, network or HSM, so that a test can
// stop at any message and hand a party a tampered copy.
type signPair struct {
	t     testing.TB
	ids   [2]PartyID
	p     [2]*tssLibProtocol
	ends  [2]chan *common.SignatureData
	queue []routed
	// toA records every message delivered to A.
	toA []inMsg
}

func newSignPair(t testing.TB, shares []*keyShare, a, b int) *signPair {
	t.Helper()
	sp := &signPair{t: t, ids: [2]PartyID{shares[a].Self, shares[b].Self}}
	digest := sha256.Sum256([]byte("validation test"))
	prop := &Proposal{Op: OpSign, KeyID: shares[a].KeyID, Parties: SortParties(sp.ids[:]), Payload: digest[:]}
	for i, s := range []*keyShare{shares[a], shares[b]} {
		target, err := newSigningTarget(s, digest[:], "")
		if err != nil {
			t.Fatal(err)
		}
		sp.ends[i] = make(chan *common.SignatureData, 1)
		p, err := newSignProtocol(s, prop, target, s.Self, sp.ends[i], rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		end := sp.ends[i]
		var done bool
		p.finished = func(role) bool {
			if !done {
				select {
				case <-end:
					done = true
				default:
				}
			}
			return done
		}
		sp.p[i] = p
	}
	for i := range sp.p {
		outs, err := sp.p[i].start()
		if err != nil {
			t.Fatal(err)
		}
		sp.route(i, outs)
	}
	return sp
}

func (sp *signPair) route(from int, outs []outMsg) {
	for _, o := range outs {
		sp.queue = append(sp.queue, routed{to: 1 - from, in: inMsg{from: sp.ids[from], broadcast: o.broadcast, round: o.round, payload: o.payload}})
	}
}

// next returns the next message for party `to` of wire round `round`,
// delivering every message queued before it.
func (sp *signPair) next(to int, round uint32) inMsg {
	sp.t.Helper()
	for len(sp.queue) > 0 {
		r := sp.queue[0]
		sp.queue = sp.queue[1:]
		if r.to == to && r.in.round == round {
			return r.in
		}
		if err := sp.deliver(r); err != nil {
			sp.t.Fatalf("honest session failed before round %d: %v", round, err)
		}
	}
	sp.t.Fatalf("no round %d message for party %d", round, to)
	return inMsg{}
}

func (sp *signPair) deliver(r routed) error {
	if r.to == 0 {
		sp.toA = append(sp.toA, r.in)
	}
	outs, err := safeHandle(sp.p[r.to], r.in)
	if err != nil {
		return err
	}
	sp.route(r.to, outs)
	return nil
}

// finish delivers everything queued until the queue is empty or a party
// fails. It returns party A's error, or nil with signed reporting whether A
// completed the signature (when B fails first, A is left waiting, as it
// would be until B's abort or its round timeout).
func (sp *signPair) finish() (err error, signed bool) {
	for len(sp.queue) > 0 {
		r := sp.queue[0]
		sp.queue = sp.queue[1:]
		if err := sp.deliver(r); err != nil {
			if r.to == 0 {
				return err, false
			}
			break
		}
	}
	return nil, sp.p[0].done()
}

func (sp *signPair) wipe() {
	for _, p := range sp.p {
		p.wipe()
	}
}

// safeHandle turns a panic in the protocol, which must never happen, into
// a test failure instead of a crashed test binary.
func safeHandle(p *tssLibProtocol, in inMsg) (outs []outMsg, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("PANIC: %v", r)
		}
	}()
	return p.handle(in)
}

// rewritePayload decodes the tss-lib content of a protocol payload, lets
// edit change it and encodes it again.
func rewritePayload(t testing.TB, payload []byte, edit func(proto.Message)) []byte {
	t.Helper()
	var a anypb.Any
	if err := proto.Unmarshal(payload[2:], &a); err != nil {
		t.Fatal(err)
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := proto.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return append(bytes.Clone(payload[:2]), wire...)
}

// bigBytes returns x as big-endian bytes.
func bigBytes(x *big.Int) []byte { return x.Bytes() }
