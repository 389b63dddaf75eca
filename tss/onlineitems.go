package tss

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyquorum/keyquorum/tss/gg20"
)

// A coalesced online session carries several signing requests, each with
// its own policy evidence, and every co-signer answers each request on its
// own: a signature share, or a refusal that fails that request alone.
//
// Payload of the proposal (the second form of the online payload; the
// first starts with a 32-bit count of at most MaxOnlineBatch, so its first
// byte is zero):
//
//	0xff 0x02 | u32 n | n × (presignature ID (32) | digest (32) | u32 len | evidence)
//
// Answer of a co-signer, one entry per request, in order:
//
//	0x00 | sᵢ (32 bytes)                          a share
//	0x01 | u16 len | code "\n" reason (len bytes) a refusal
//
// A co-signer marks used, in its HSM ledger, the presignatures of the
// requests it answers with a share, in one ledger update, before the answer
// leaves it; those of requests it refuses it leaves as they are, as it
// does when it refuses a whole session. The initiator consumed every
// presignature of the session before it sent the proposal, so a refused
// request's presignature is burned there (Burned in its pool's status).
const (
	onlineItemsMagic   = 0xff
	onlineItemsVersion = 0x02

	answerShare   = 0x00
	answerRefusal = 0x01

	// maxAnswerRefusal bounds a refusal in an answer: a refusal code, a
	// newline and a reason cut to 512 bytes, as a whole-session refusal.
	maxAnswerRefusal = 32 + 1 + 512
)

// onlinePayload is a decoded online proposal payload.
type onlinePayload struct {
	ids     []string
	digests [][32]byte
	// evidence is each request's evidence in a coalesced session, nil in
	// the first form (the proposal's Evidence covers every digest).
	evidence [][]byte
}

// encodeOnlineItems encodes the payload of a coalesced online session.
func encodeOnlineItems(ids []string, digests [][]byte, evidence [][]byte) ([]byte, error) {
	out := []byte{onlineItemsMagic, onlineItemsVersion}
	out = binary.BigEndian.AppendUint32(out, uint32(len(ids)))
	for i, id := range ids {
		b, err := hex.DecodeString(id)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("%w: presignature ID %q", ErrBadRequest, id)
		}
		if len(digests[i]) != 32 {
			return nil, fmt.Errorf("%w: digest %d must be 32 bytes, not %d", ErrBadRequest, i, len(digests[i]))
		}
		out = append(out, b...)
		out = append(out, digests[i]...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(evidence[i])))
		out = append(out, evidence[i]...)
	}
	return out, nil
}

// decodeOnlinePayload decodes either form of an online proposal payload.
func decodeOnlinePayload(b []byte) (onlinePayload, error) {
	if len(b) == 0 || b[0] != onlineItemsMagic {
		ids, digests, err := decodeOnline(b)
		return onlinePayload{ids: ids, digests: digests}, err
	}
	var p onlinePayload
	if len(b) < 6 || b[1] != onlineItemsVersion {
		return p, errors.New("coalesced online request of an unknown version")
	}
	n := binary.BigEndian.Uint32(b[2:])
	if n == 0 || n > MaxOnlineBatch {
		return p, errors.New("bad coalesced online request count")
	}
	b = b[6:]
	p.ids = make([]string, n)
	p.digests = make([][32]byte, n)
	p.evidence = make([][]byte, n)
	seen := make(map[string]bool, n)
	for i := range p.ids {
		if len(b) < 68 {
			return onlinePayload{}, errors.New("short coalesced online request")
		}
		p.ids[i] = hex.EncodeToString(b[:32])
		if seen[p.ids[i]] {
			return onlinePayload{}, errors.New("a presignature is named twice")
		}
		seen[p.ids[i]] = true
		copy(p.digests[i][:], b[32:64])
		l := binary.BigEndian.Uint32(b[64:])
		b = b[68:]
		if uint64(l) > uint64(len(b)) {
			return onlinePayload{}, errors.New("request evidence overruns the coalesced online request")
		}
		p.evidence[i], b = b[:l:l], b[l:]
	}
	if len(b) != 0 {
		return onlinePayload{}, errors.New("bytes after the last request of a coalesced online request")
	}
	return p, nil
}

// itemOf places a Proposal a Policy sees in its coalesced session.
type itemOf struct {
	session      SessionID
	index, count int
}

// BatchItem reports whether p is one request of a coalesced GG20 online
// session (see [Engine.SignOnline]) as a [Policy] is shown it: such a
// session carries several requests, each with its own evidence, and each
// party's Policy is asked about each request on its own, with p's Payload
// holding that request's presignature and digest and p's Evidence that
// request's evidence. A refusal then fails that request alone. session is
// the coalesced session's ID (p.SessionID differs), index the request's
// place in it and count the number of requests it carries.
func (p *Proposal) BatchItem() (session SessionID, index, count int, ok bool) {
	if p.item == nil {
		return SessionID{}, 0, 0, false
	}
	return p.item.session, p.item.index, p.item.count, true
}

// itemView is the proposal a Policy is shown for request i of a coalesced
// online session.
func (o *onlineSession) itemView(sid SessionID, i int) (*Proposal, error) {
	r := o.req
	payload, err := encodeOnline([]string{r.ids[i]}, [][]byte{r.digests[i][:]})
	if err != nil {
		return nil, err
	}
	q := *o.prop
	q.Parties = slices.Clone(o.prop.Parties)
	q.Payload = payload
	q.Evidence = slices.Clone(r.evidence[i])
	q.item = &itemOf{session: sid, index: i, count: len(r.ids)}
	return &q, nil
}

// checkItems asks the Policy about every request of a coalesced session on
// its own and keeps its refusals. It fails only when it refuses them all.
func (o *onlineSession) checkItems(ctx context.Context, pol Policy) error {
	n := len(o.req.ids)
	o.refused = make([]error, n)
	if pol == nil {
		return nil
	}
	sid := o.prop.SessionID()
	var first error
	for i := range n {
		view, err := o.itemView(sid, i)
		if err == nil {
			if err = pol(ctx, view); err != nil {
				err = fmt.Errorf("%w: %w", ErrPolicy, err)
			}
		}
		if err != nil {
			o.refused[i] = err
			if first == nil {
				first = err
			}
		}
	}
	if first != nil && !slices.ContainsFunc(o.refused, func(err error) bool { return err == nil }) {
		return first
	}
	return nil
}

// accepted returns the part of r this party accepted (refused[i] nil).
func (r *onlineRequest) accepted(refused []error) *onlineRequest {
	sub := *r
	sub.ids, sub.digests, sub.evidence = nil, nil, nil
	for i, err := range refused {
		if err == nil {
			sub.ids = append(sub.ids, r.ids[i])
			sub.digests = append(sub.digests, r.digests[i])
		}
	}
	return &sub
}

// respondItems, on a co-signer of a coalesced session, marks used the
// presignatures of the requests it accepted (one ledger update), records
// their use, and answers each request with its share or its refusal.
func (o *onlineSession) respondItems(ctx context.Context) ([]byte, error) {
	sub := o.req.accepted(o.refused)
	sts, shares, err := o.e.signShares(ctx, sub, false)
	if err != nil {
		return nil, err
	}
	clearStored(sts)
	// Recorded before the shares leave this party, or they do not leave.
	if err := o.e.presigEvent(ctx, o.eventFor(sub, PresignaturesUsed)); err != nil {
		clearShares(shares)
		return nil, o.notRecorded(err)
	}
	out := make([]byte, 0, 33*len(o.req.ids))
	next := 0
	for _, rerr := range o.refused {
		if rerr == nil {
			out = append(out, answerShare)
			var b [32]byte
			shares[next].FillBytes(b[:])
			out = append(out, b[:]...)
			next++
			continue
		}
		msg := rerr.Error()
		if len(msg) > 512 {
			msg = msg[:512]
		}
		text := refusalCode(rerr) + "\n" + msg
		out = append(out, answerRefusal)
		out = binary.BigEndian.AppendUint16(out, uint16(len(text)))
		out = append(out, text...)
	}
	clearShares(shares)
	return out, nil
}

// itemAnswer is a co-signer's answer to one request: a share or a refusal.
type itemAnswer struct {
	share   *big.Int
	refusal []byte
}

// decodeAnswers decodes a co-signer's answer to a coalesced session of n
// requests: exactly one entry per request.
func decodeAnswers(b []byte, n int) ([]itemAnswer, error) {
	out := make([]itemAnswer, 0, n)
	for len(b) > 0 {
		if len(out) == n {
			return nil, fmt.Errorf("more than %d answers", n)
		}
		switch b[0] {
		case answerShare:
			if len(b) < 33 {
				return nil, fmt.Errorf("answer %d: short share", len(out))
			}
			s := new(big.Int).SetBytes(b[1:33])
			if s.Cmp(secp256k1.S256().N) >= 0 {
				return nil, fmt.Errorf("answer %d: share out of range", len(out))
			}
			out = append(out, itemAnswer{share: s})
			b = b[33:]
		case answerRefusal:
			if len(b) < 3 {
				return nil, fmt.Errorf("answer %d: short refusal", len(out))
			}
			l := int(binary.BigEndian.Uint16(b[1:]))
			if l == 0 || l > maxAnswerRefusal || len(b) < 3+l {
				return nil, fmt.Errorf("answer %d: refusal of bad length", len(out))
			}
			out = append(out, itemAnswer{refusal: slices.Clone(b[3 : 3+l])})
			b = b[3+l:]
		default:
			return nil, fmt.Errorf("answer %d: unknown kind %#x", len(out), b[0])
		}
	}
	if len(out) != n {
		return nil, fmt.Errorf("%d answers for %d requests", len(out), n)
	}
	return out, nil
}

// reportItems, on the initiator, decodes and keeps one co-signer's
// answers; a malformed answer, or one with a request missing or extra, is
// blamed on its sender.
func (o *onlineSession) reportItems(from PartyID, payload []byte) error {
	answers, err := decodeAnswers(payload, len(o.req.ids))
	if err != nil {
		return &CulpritError{Op: OpOnline, Parties: []PartyID{from}, Round: gg20.RoundOnline, Reason: fmt.Errorf("%w: %v", ErrMalformedMessage, err)}
	}
	o.mu.Lock()
	o.answers[from] = answers
	o.mu.Unlock()
	return nil
}

// verifyItems, on the initiator, settles every request of a coalesced
// session on its own: refused here or by a co-signer, a bad share (blamed
// on its sender), or a verified signature.
func (o *onlineSession) verifyItems() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	defer clearStored(o.sts)
	r := o.req
	n := len(r.ids)
	errs := make([]error, n)
	skip := make([]bool, n)
	shares := make(map[PartyID][]*big.Int, len(o.answers))
	for p, as := range o.answers {
		ss := make([]*big.Int, n)
		for i, a := range as {
			ss[i] = a.share
		}
		shares[p] = ss
	}
	for i := range n {
		if o.refused != nil && o.refused[i] != nil {
			errs[i] = o.refused[i]
		}
		for _, p := range r.order {
			if as, ok := o.answers[p]; ok && as[i].refusal != nil && errs[i] == nil {
				errs[i] = parseRefusal(p, as[i].refusal)
			}
		}
		skip[i] = errs[i] != nil
	}
	sigs, blames, cerrs := o.e.combineEach(r, o.sts, o.own, shares, skip)
	for i := range n {
		switch {
		case skip[i]:
		case len(blames[i]) > 0:
			errs[i] = &CulpritError{Op: OpOnline, Parties: blames[i], Round: gg20.RoundOnline, Reason: fmt.Errorf("%w: %w", ErrProtocol, gg20.ErrBadShare)}
		case cerrs[i] != nil:
			errs[i] = cerrs[i]
		}
		if errs[i] != nil {
			sigs[i] = nil
		}
	}
	clearShares(o.own)
	o.sigs, o.errs = sigs, errs
	return nil
}
