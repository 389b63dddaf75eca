package tss

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sync"

	"github.com/keyquorum/keyquorum/frost"
)

// Threshold Schnorr keys (FROST, RFC 9591) live beside the ECDSA keys, on
// the same committee and engine: a keygen session runs the two-round
// Pedersen DKG of package frost, and a signing session the two rounds of
// FROST signing with nonces made inside the session, kept in memory only
// and consumed by the signature share: no nonce is ever stored, so no
// restored store or restarted site can bring one back.

// Scheme names a threshold Schnorr signature scheme.
type Scheme string

// The Schnorr schemes.
const (
	// SchemeBIP340 is Bitcoin's Schnorr signature over secp256k1 (BIP-340),
	// with x-only keys, for Taproot key-path spends (frost.Secp256k1BIP340).
	SchemeBIP340 Scheme = "bip340"
	// SchemeEd25519 is RFC 8032 Ed25519 (frost.Ed25519).
	SchemeEd25519 Scheme = "ed25519"
)

// suite returns the FROST ciphersuite of the scheme.
func (s Scheme) suite() (*frost.Ciphersuite, error) {
	switch s {
	case SchemeBIP340:
		return frost.Secp256k1BIP340(), nil
	case SchemeEd25519:
		return frost.Ed25519(), nil
	}
	return nil, fmt.Errorf("%w: unknown Schnorr scheme %q (want %q or %q)", ErrBadRequest, s, SchemeBIP340, SchemeEd25519)
}

// Bounds of a Schnorr signing request.
const (
	// MaxSchnorrMessage bounds the message of an Ed25519 signature.
	MaxSchnorrMessage = 64 << 10
	// maxSchnorrShare bounds a stored Schnorr share record.
	maxSchnorrShare = 16 << 10
)

// kindSchnorrShare is the store kind of Schnorr key shares, one record per
// key (version 1).
const kindSchnorrShare = "schnorr-share"

// SchnorrKeygenRequest asks for a new threshold Schnorr key.
type SchnorrKeygenRequest struct {
	// Scheme is the signature scheme of the key.
	Scheme Scheme
	// Parties is the committee; it must include this party.
	Parties []PartyID
	// Threshold is M, the number of parties required to sign.
	Threshold int
}

// SchnorrKeyInfo describes a threshold Schnorr key. It holds nothing
// secret.
type SchnorrKeyInfo struct {
	// ID names the key on every site.
	ID string `json:"key_id"`
	// Scheme is the signature scheme.
	Scheme Scheme `json:"scheme"`
	// PublicKey is the group key: 32 bytes, x-only for BIP-340 (the
	// internal key of a Taproot output), the RFC 8032 encoding for Ed25519.
	PublicKey []byte `json:"public_key"`
	// Threshold is M.
	Threshold int `json:"threshold"`
	// Parties is the committee, sorted.
	Parties []PartyID `json:"parties"`
}

// SchnorrSignRequest asks the committee of a Schnorr key for a signature.
type SchnorrSignRequest struct {
	// KeyID names the key.
	KeyID string
	// Message is what is signed: a 32-byte message for BIP-340 (a BIP-341
	// signature hash), any message up to MaxSchnorrMessage bytes for
	// Ed25519.
	Message []byte
	// Signers are the parties that sign; they must include this party and
	// number at least the key's threshold. Empty means the first M
	// parties of the committee, starting with this one.
	Signers []PartyID
	// Taproot, for BIP-340 only, signs for the BIP-341 output key of the
	// group key (a key-path spend) instead of the group key itself.
	Taproot bool
	// MerkleRoot is the 32-byte script tree root of the Taproot output;
	// empty for an output with no script path (BIP-86). Only with Taproot.
	MerkleRoot []byte
}

// SchnorrKeygen runs a distributed key generation for a Schnorr key with
// the committee and returns the key. Every party stores its share sealed
// before SchnorrKeygen returns, and the call fails unless every party
// reports the same public key and public shares.
func (e *Engine) SchnorrKeygen(ctx context.Context, req SchnorrKeygenRequest) (*SchnorrKeyInfo, error) {
	if _, err := req.Scheme.suite(); err != nil {
		return nil, err
	}
	var id [16]byte
	if _, err := io.ReadFull(e.cfg.Rand, id[:]); err != nil {
		return nil, fmt.Errorf("tss: read randomness: %w", err)
	}
	prop := &Proposal{
		Op:        OpSchnorrKeygen,
		KeyID:     hex.EncodeToString(id[:]),
		Parties:   SortParties(req.Parties),
		Threshold: req.Threshold,
		Payload:   []byte(req.Scheme),
	}
	op := newSchnorrKeygenSession(e, prop)
	if err := e.propose(ctx, prop, op); err != nil {
		return nil, err
	}
	if op.info == nil {
		return nil, fmt.Errorf("%w: Schnorr keygen ended without a key", ErrProtocol)
	}
	return op.info, nil
}

// SchnorrKey returns what this party knows of a Schnorr key, or an error
// wrapping ErrUnknownKey.
func (e *Engine) SchnorrKey(ctx context.Context, keyID string) (*SchnorrKeyInfo, error) {
	sh, err := e.loadSchnorrShare(ctx, keyID)
	if err != nil {
		return nil, err
	}
	defer sh.wipe()
	return sh.info(), nil
}

// SchnorrSign runs FROST signing with the signers and returns the 64-byte
// signature, which it verified: BIP-340 (under the Taproot output key when
// req.Taproot) or RFC 8032 Ed25519. Every signer checks the request, with
// its Policy, before it commits to a nonce.
func (e *Engine) SchnorrSign(ctx context.Context, req SchnorrSignRequest) ([]byte, error) {
	sh, err := e.loadSchnorrShare(ctx, req.KeyID)
	if err != nil {
		return nil, err
	}
	info := sh.info()
	sh.wipe()
	signers := req.Signers
	if len(signers) == 0 {
		signers = append([]PartyID{e.net.Self()}, slices.DeleteFunc(slices.Clone(info.Parties), func(p PartyID) bool { return p == e.net.Self() })...)
		signers = signers[:info.Threshold]
	}
	payload, err := encodeSchnorrSign(req)
	if err != nil {
		return nil, err
	}
	prop := &Proposal{Op: OpSchnorrSign, KeyID: req.KeyID, Parties: SortParties(signers), Payload: payload}
	op := newSchnorrSignSession(e, prop)
	if err := e.propose(ctx, prop, op); err != nil {
		return nil, err
	}
	if op.signature == nil {
		return nil, fmt.Errorf("%w: Schnorr signing ended without a signature", ErrProtocol)
	}
	return op.signature, nil
}

// A Schnorr signing payload: a flag byte (bit 0: Taproot), the merkle
// root's length (0 or 32) and the root, then the message.
const schnorrTaproot = 1

func encodeSchnorrSign(req SchnorrSignRequest) ([]byte, error) {
	if len(req.MerkleRoot) != 0 && (!req.Taproot || len(req.MerkleRoot) != 32) {
		return nil, fmt.Errorf("%w: a merkle root is 32 bytes and goes with Taproot", ErrBadRequest)
	}
	if len(req.Message) > MaxSchnorrMessage {
		return nil, fmt.Errorf("%w: a Schnorr message is at most %d bytes, not %d", ErrBadRequest, MaxSchnorrMessage, len(req.Message))
	}
	var flags byte
	if req.Taproot {
		flags |= schnorrTaproot
	}
	out := []byte{flags, byte(len(req.MerkleRoot))}
	out = append(out, req.MerkleRoot...)
	return append(out, req.Message...), nil
}

// schnorrSignInput is a decoded Schnorr signing payload.
type schnorrSignInput struct {
	message []byte
	taproot *frost.Taproot
}

func decodeSchnorrSign(b []byte, scheme Scheme) (*schnorrSignInput, error) {
	if len(b) < 2 || b[0]&^schnorrTaproot != 0 || (b[1] != 0 && b[1] != 32) || len(b) < 2+int(b[1]) {
		return nil, fmt.Errorf("%w: malformed Schnorr signing payload", ErrBadRequest)
	}
	in := &schnorrSignInput{message: b[2+int(b[1]):]}
	root := b[2 : 2+int(b[1])]
	switch {
	case b[0]&schnorrTaproot != 0:
		if scheme != SchemeBIP340 {
			return nil, fmt.Errorf("%w: a Taproot tweak needs a BIP-340 key, not %s", ErrBadRequest, scheme)
		}
		in.taproot = &frost.Taproot{MerkleRoot: slices.Clone(root)}
	case len(root) != 0:
		return nil, fmt.Errorf("%w: a merkle root without Taproot", ErrBadRequest)
	}
	switch {
	case scheme == SchemeBIP340 && len(in.message) != 32:
		return nil, fmt.Errorf("%w: a BIP-340 message is 32 bytes, not %d", ErrBadRequest, len(in.message))
	case len(in.message) > MaxSchnorrMessage:
		return nil, fmt.Errorf("%w: a Schnorr message is at most %d bytes", ErrBadRequest, MaxSchnorrMessage)
	}
	return in, nil
}

// SchnorrMessage returns the message a Schnorr signing proposal asks its
// parties to sign and whether it is a Taproot key-path signature (with the
// script tree root, empty for none). A policy hook uses it to check the
// message against what the site itself derived from the request. A
// proposal of another operation gives an error wrapping ErrBadRequest.
func (p *Proposal) SchnorrMessage() (message []byte, taproot bool, merkleRoot []byte, err error) {
	if p.Op != OpSchnorrSign || len(p.Payload) < 2 {
		return nil, false, nil, fmt.Errorf("%w: not a Schnorr signing proposal", ErrBadRequest)
	}
	b := p.Payload
	if b[0]&^schnorrTaproot != 0 || (b[1] != 0 && b[1] != 32) || len(b) < 2+int(b[1]) {
		return nil, false, nil, fmt.Errorf("%w: malformed Schnorr signing payload", ErrBadRequest)
	}
	return slices.Clone(b[2+int(b[1]):]), b[0]&schnorrTaproot != 0, slices.Clone(b[2 : 2+int(b[1])]), nil
}

// schnorrShare is one party's stored Schnorr key share.
type schnorrShare struct {
	keyID     string
	scheme    Scheme
	parties   []PartyID // sorted; party i has FROST identifier i+1
	threshold int
	share     *frost.KeyShare
}

func (s *schnorrShare) info() *SchnorrKeyInfo {
	return &SchnorrKeyInfo{ID: s.keyID, Scheme: s.scheme, PublicKey: schnorrGroupKey(s.scheme, s.share.PublicKey()), Threshold: s.threshold, Parties: slices.Clone(s.parties)}
}

// schnorrGroupKey is the 32-byte public key of a scheme: x-only for BIP-340.
func schnorrGroupKey(scheme Scheme, pub *frost.PublicKey) []byte {
	if scheme == SchemeBIP340 {
		if x, err := pub.XOnly(); err == nil {
			return x
		}
	}
	return pub.Bytes()
}

func (s *schnorrShare) wipe() {
	if s != nil && s.share != nil {
		s.share.Wipe()
	}
}

// schnorrShareMagic opens a stored Schnorr share record (FORMAT.md).
const schnorrShareMagic = "KQSCHNORR\x01"

// encode lays the share out as: magic, the key ID, the scheme, the
// threshold, the parties, the public key (frost.PublicKey encoding), this
// party's identifier and its secret share; strings and byte fields are
// prefixed with a 2-byte length. The caller wipes the result.
func (s *schnorrShare) encode() ([]byte, error) {
	pub, err := s.share.PublicKey().MarshalBinary()
	if err != nil {
		return nil, err
	}
	secret, err := s.share.SecretBytes()
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	b := []byte(schnorrShareMagic)
	field := func(v []byte) {
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	field([]byte(s.keyID))
	field([]byte(s.scheme))
	b = binary.BigEndian.AppendUint16(b, uint16(s.threshold))
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.parties)))
	for _, p := range s.parties {
		field([]byte(p))
	}
	field(pub)
	b = binary.BigEndian.AppendUint16(b, uint16(s.share.Identifier()))
	field(secret)
	return b, nil
}

func decodeSchnorrShare(b []byte) (*schnorrShare, error) {
	bad := func(what string) error { return fmt.Errorf("%w: stored Schnorr share: %s", ErrCorruptShare, what) }
	if len(b) > maxSchnorrShare || !bytes.HasPrefix(b, []byte(schnorrShareMagic)) {
		return nil, bad("not a Schnorr share record of this version")
	}
	r := b[len(schnorrShareMagic):]
	u16 := func() (int, bool) {
		if len(r) < 2 {
			return 0, false
		}
		v := int(binary.BigEndian.Uint16(r))
		r = r[2:]
		return v, true
	}
	field := func() ([]byte, bool) {
		n, ok := u16()
		if !ok || len(r) < n {
			return nil, false
		}
		v := r[:n]
		r = r[n:]
		return v, true
	}
	s := &schnorrShare{}
	keyID, ok1 := field()
	scheme, ok2 := field()
	t, ok3 := u16()
	n, ok4 := u16()
	if !ok1 || !ok2 || !ok3 || !ok4 || n > MaxParties {
		return nil, bad("truncated header")
	}
	s.keyID, s.scheme, s.threshold = string(keyID), Scheme(scheme), t
	for range n {
		p, ok := field()
		if !ok {
			return nil, bad("truncated parties")
		}
		s.parties = append(s.parties, PartyID(p))
	}
	pubBytes, ok1 := field()
	id, ok2 := u16()
	secret, ok3 := field()
	if !ok1 || !ok2 || !ok3 || len(r) != 0 {
		return nil, bad("truncated or trailing bytes")
	}
	suite, err := s.scheme.suite()
	if err != nil {
		return nil, bad(err.Error())
	}
	pub, err := frost.ParsePublicKey(pubBytes)
	if err != nil || pub.Suite() != suite || pub.Threshold() != s.threshold || len(pub.Participants()) != len(s.parties) {
		return nil, bad("public key does not match the record")
	}
	if err := validKeyID(s.keyID); err != nil || !slices.IsSorted(s.parties) || id < 1 || id > len(s.parties) {
		return nil, bad("key ID, parties or identifier out of range")
	}
	s.share, err = frost.NewKeyShare(pub, frost.Identifier(id), secret)
	if err != nil {
		return nil, bad("secret share does not match its public share")
	}
	return s, nil
}

func (e *Engine) saveSchnorrShare(ctx context.Context, s *schnorrShare) error {
	b, err := s.encode()
	if err != nil {
		return fmt.Errorf("tss: encode Schnorr share of key %s: %w", s.keyID, err)
	}
	defer clear(b)
	if err := e.cfg.Store.Put(ctx, kindSchnorrShare, s.keyID, 1, b); err != nil {
		return fmt.Errorf("tss: store Schnorr share of key %s: %w", s.keyID, err)
	}
	return nil
}

func (e *Engine) loadSchnorrShare(ctx context.Context, keyID string) (*schnorrShare, error) {
	if err := validKeyID(keyID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	b, _, err := e.cfg.Store.Get(ctx, kindSchnorrShare, keyID)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no Schnorr key %s on %s", ErrUnknownKey, keyID, e.net.Self())
	}
	if err != nil {
		return nil, fmt.Errorf("tss: read Schnorr share of key %s: %w", keyID, err)
	}
	defer clear(b)
	s, err := decodeSchnorrShare(b)
	if err != nil {
		return nil, err
	}
	if s.keyID != keyID {
		s.wipe()
		return nil, fmt.Errorf("%w: the record of key %s holds key %s", ErrCorruptShare, keyID, s.keyID)
	}
	return s, nil
}

// frostIDs maps a sorted party list to FROST identifiers: the i-th party
// is i+1.
func frostIDs(parties []PartyID) map[PartyID]frost.Identifier {
	out := make(map[PartyID]frost.Identifier, len(parties))
	for i, p := range parties {
		out[p] = frost.Identifier(i + 1)
	}
	return out
}

// blame turns a frost.CulpritError into the engine's, naming parties.
func blame(op Operation, round uint32, parties []PartyID, err error) error {
	var ce *frost.CulpritError
	if !errors.As(err, &ce) {
		return fmt.Errorf("%w: %s: %w", ErrProtocol, op, err)
	}
	var who []PartyID
	for _, id := range ce.Parties {
		if i := int(id) - 1; i >= 0 && i < len(parties) {
			who = append(who, parties[i])
		}
	}
	return &CulpritError{Op: op, Parties: who, Round: round, Reason: err}
}

// schnorrKeygenSession runs the DKG; every party reports the public key
// with every public share, which the initiator compares with its own.
type schnorrKeygenSession struct {
	e    *Engine
	prop *Proposal

	mu       sync.Mutex
	info     *SchnorrKeyInfo
	own      []byte             // this party's encoded public key
	reported map[PartyID][]byte // at the initiator
	proto    *dkgProtocol
}

var _ sessionOp = (*schnorrKeygenSession)(nil)

func newSchnorrKeygenSession(e *Engine, prop *Proposal) *schnorrKeygenSession {
	return &schnorrKeygenSession{e: e, prop: prop, reported: make(map[PartyID][]byte)}
}

func (k *schnorrKeygenSession) check(ctx context.Context) error {
	prop := k.prop
	n := len(prop.Parties)
	switch {
	case n < 2 || n > MaxParties:
		return fmt.Errorf("%w: a committee has 2 to %d parties, not %d", ErrBadRequest, MaxParties, n)
	case prop.Threshold < 2 || prop.Threshold > n:
		return fmt.Errorf("%w: threshold %d-of-%d is not supported; M must be 2 to %d", ErrBadRequest, prop.Threshold, n, n)
	case prop.Path != "" || prop.Count != 0 || len(prop.NewParties) != 0 || prop.Epoch != 0:
		return fmt.Errorf("%w: Schnorr keygen takes no path, count, epoch or new parties", ErrBadRequest)
	}
	if _, err := Scheme(prop.Payload).suite(); err != nil {
		return err
	}
	if err := validKeyID(prop.KeyID); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	for _, kind := range []string{kindSchnorrShare, kindShare} {
		if _, err := k.e.cfg.Store.Versions(ctx, kind, prop.KeyID); !errors.Is(err, fs.ErrNotExist) {
			if err == nil {
				return fmt.Errorf("%w: key %s already exists here", ErrBadRequest, prop.KeyID)
			}
			return fmt.Errorf("tss: check key %s: %w", prop.KeyID, err)
		}
	}
	return nil
}

func (k *schnorrKeygenSession) wantReports() bool { return true }

func (k *schnorrKeygenSession) newProtocol(context.Context) (protocol, error) {
	suite, err := Scheme(k.prop.Payload).suite()
	if err != nil {
		return nil, err
	}
	rnd, err := k.e.sessionRand(OpSchnorrKeygen)
	if err != nil {
		return nil, err
	}
	ids := frostIDs(k.prop.Parties)
	all := make([]frost.Identifier, 0, len(ids))
	for _, id := range ids {
		all = append(all, id)
	}
	sid := k.prop.SessionID()
	dkg, r1, err := frost.NewDKG(frost.DKGConfig{Suite: suite, Self: ids[k.e.net.Self()], Participants: all, Threshold: k.prop.Threshold, Context: sid[:], Rand: rnd})
	if err != nil {
		return nil, fmt.Errorf("tss: Schnorr keygen on %s: %w", k.e.net.Self(), err)
	}
	p := &dkgProtocol{self: k.e.net.Self(), parties: k.prop.Parties, ids: ids, dkg: dkg, first: r1, r1: map[PartyID]*frost.DKGRound1{}, r2: map[PartyID]*frost.DKGRound2{}}
	k.proto = p
	return p, nil
}

func (k *schnorrKeygenSession) finish(ctx context.Context) ([]byte, error) {
	share := k.proto.share
	if share == nil {
		return nil, fmt.Errorf("%w: Schnorr keygen ended without a share", ErrProtocol)
	}
	pub, err := share.PublicKey().MarshalBinary()
	if err != nil {
		return nil, err
	}
	s := &schnorrShare{keyID: k.prop.KeyID, scheme: Scheme(k.prop.Payload), parties: slices.Clone(k.prop.Parties), threshold: k.prop.Threshold, share: share}
	if err := k.e.saveSchnorrShare(ctx, s); err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.info, k.own = s.info(), pub
	k.mu.Unlock()
	k.e.log.Info("Schnorr key generated", "key", k.prop.KeyID, "scheme", string(s.scheme), "threshold", s.threshold, "parties", len(s.parties))
	return pub, nil
}

func (k *schnorrKeygenSession) report(from PartyID, payload []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.reported[from] = slices.Clone(payload)
	return nil
}

func (k *schnorrKeygenSession) verify() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.info == nil {
		return fmt.Errorf("%w: Schnorr keygen ended without a key", ErrProtocol)
	}
	return mismatchedReports(OpSchnorrKeygen, k.reported, k.own)
}

// dkgProtocol runs frost's DKG: round 1 is every party's broadcast
// commitment and proof of knowledge, round 2 one secret share from every
// party to every other, point to point.
type dkgProtocol struct {
	self    PartyID
	parties []PartyID
	ids     map[PartyID]frost.Identifier
	dkg     *frost.DKG
	first   *frost.DKGRound1
	r1      map[PartyID]*frost.DKGRound1
	r2      map[PartyID]*frost.DKGRound2
	step    uint32 // 1 until this party sent its round-2 shares, then 2
	share   *frost.KeyShare
	over    bool
}

func (p *dkgProtocol) start() ([]outMsg, error) {
	b, err := p.first.MarshalBinary()
	if err != nil {
		return nil, err
	}
	p.step = 1
	return []outMsg{{broadcast: true, round: 1, payload: b}}, nil
}

func (p *dkgProtocol) handle(in inMsg) ([]outMsg, error) {
	switch in.round {
	case 1:
		m, err := frost.ParseDKGRound1(in.payload)
		if err != nil || m.From() != p.ids[in.from] {
			return nil, &CulpritError{Op: OpSchnorrKeygen, Parties: []PartyID{in.from}, Round: 1, Reason: fmt.Errorf("%w: round-1 message: not its own DKG commitment", ErrMalformedMessage)}
		}
		p.r1[in.from] = m
	case 2:
		m, err := frost.ParseDKGRound2(in.payload)
		if err != nil || m.From() != p.ids[in.from] || m.To() != p.ids[p.self] {
			if m != nil {
				m.Wipe()
			}
			return nil, &CulpritError{Op: OpSchnorrKeygen, Parties: []PartyID{in.from}, Round: 2, Reason: fmt.Errorf("%w: round-2 message: not its share for this party", ErrMalformedMessage)}
		}
		p.r2[in.from] = m
	}
	var out []outMsg
	if p.step == 1 && len(p.r1) == len(p.parties)-1 {
		msgs := make([]*frost.DKGRound1, 0, len(p.r1))
		for _, m := range p.r1 {
			msgs = append(msgs, m)
		}
		shares, err := p.dkg.Round2(msgs)
		if err != nil {
			return nil, blame(OpSchnorrKeygen, 1, p.parties, err)
		}
		for _, sh := range shares {
			b, err := sh.MarshalBinary()
			sh.Wipe()
			if err != nil {
				return nil, err
			}
			to := p.parties[int(sh.To())-1]
			out = append(out, outMsg{to: []PartyID{to}, round: 2, payload: b})
		}
		p.step = 2
	}
	if p.step == 2 && !p.over && len(p.r2) == len(p.parties)-1 {
		msgs := make([]*frost.DKGRound2, 0, len(p.r2))
		for _, m := range p.r2 {
			msgs = append(msgs, m)
		}
		share, err := p.dkg.Finalize(msgs)
		clear(p.r2)
		if err != nil {
			return nil, blame(OpSchnorrKeygen, 2, p.parties, err)
		}
		p.share, p.over = share, true
	}
	return out, nil
}

func (p *dkgProtocol) done() bool { return p.over }

func (p *dkgProtocol) waitingFor() []PartyID {
	var out []PartyID
	for _, q := range p.parties {
		if q == p.self {
			continue
		}
		if _, ok := p.r1[q]; !ok && p.step == 1 {
			out = append(out, q)
		} else if _, ok := p.r2[q]; !ok && p.step == 2 && !p.over {
			out = append(out, q)
		}
	}
	return out
}

func (p *dkgProtocol) round() uint32 { return p.step }

func (p *dkgProtocol) broadcastRound(r uint32) (bool, bool) {
	switch r {
	case 1:
		return true, true
	case 2:
		return false, true
	}
	return false, false
}

// wipe drops the DKG state and round-2 shares; the key share itself is
// the session's result, stored by finish, and is wiped with the session.
func (p *dkgProtocol) wipe() {
	p.dkg.Wipe()
	for _, m := range p.r2 {
		m.Wipe()
	}
	clear(p.r2)
	if p.share != nil {
		p.share.Wipe()
	}
}

// schnorrSignSession runs FROST signing among the proposal's parties:
// every signer broadcasts a fresh nonce commitment, then its signature
// share; every signer aggregates and verifies the signature itself.
type schnorrSignSession struct {
	e    *Engine
	prop *Proposal

	share     *schnorrShare
	input     *schnorrSignInput
	proto     *frostSignProtocol
	signature []byte
}

var _ sessionOp = (*schnorrSignSession)(nil)

func newSchnorrSignSession(e *Engine, prop *Proposal) *schnorrSignSession {
	return &schnorrSignSession{e: e, prop: prop}
}

func (g *schnorrSignSession) check(ctx context.Context) error {
	prop := g.prop
	if prop.Path != "" || prop.Count != 0 || len(prop.NewParties) != 0 || prop.Epoch != 0 || prop.Threshold != 0 {
		return fmt.Errorf("%w: Schnorr signing takes no path, count, epoch, threshold or new parties", ErrBadRequest)
	}
	sh, err := g.e.loadSchnorrShare(ctx, prop.KeyID)
	if err != nil {
		return err
	}
	for _, p := range prop.Parties {
		if !slices.Contains(sh.parties, p) {
			sh.wipe()
			return fmt.Errorf("%w: %s is not in the committee of key %s", ErrNotInCommittee, p, prop.KeyID)
		}
	}
	if len(prop.Parties) < sh.threshold {
		sh.wipe()
		return fmt.Errorf("%w: %d signers for a %d-of-%d key", ErrBadRequest, len(prop.Parties), sh.threshold, len(sh.parties))
	}
	in, err := decodeSchnorrSign(prop.Payload, sh.scheme)
	if err != nil {
		sh.wipe()
		return err
	}
	g.share, g.input = sh, in
	return nil
}

func (g *schnorrSignSession) wantReports() bool { return false }

func (g *schnorrSignSession) newProtocol(context.Context) (protocol, error) {
	rnd, err := g.e.sessionRand(OpSchnorrSign)
	if err != nil {
		return nil, err
	}
	nonce, commitment, err := g.share.share.Commit(rnd)
	if err != nil {
		return nil, fmt.Errorf("tss: Schnorr signing on %s: %w", g.e.net.Self(), err)
	}
	ids := frostIDs(g.share.parties)
	p := &frostSignProtocol{self: g.e.net.Self(), signers: g.prop.Parties, ids: ids, share: g.share.share, nonce: nonce, own: commitment,
		input: g.input, commitments: map[PartyID]*frost.Commitment{g.e.net.Self(): commitment}, shares: map[PartyID]*frost.SignatureShare{}}
	g.proto = p
	return p, nil
}

func (g *schnorrSignSession) finish(context.Context) ([]byte, error) {
	if g.proto.signature == nil {
		return nil, fmt.Errorf("%w: Schnorr signing ended without a signature", ErrProtocol)
	}
	g.signature = slices.Clone(g.proto.signature)
	return nil, nil
}

func (g *schnorrSignSession) report(PartyID, []byte) error { return nil }

func (g *schnorrSignSession) verify() error {
	if g.signature == nil {
		return fmt.Errorf("%w: Schnorr signing ended without a signature", ErrProtocol)
	}
	return nil
}

// frostSignProtocol is FROST signing with a coordinator-free broadcast:
// round 1 carries every signer's commitment, round 2 its signature share,
// both broadcast (the session's echoes make every signer see the same
// commitments, which FROST requires of its coordinator).
type frostSignProtocol struct {
	self        PartyID
	signers     []PartyID
	ids         map[PartyID]frost.Identifier
	share       *frost.KeyShare
	nonce       *frost.Nonce
	own         *frost.Commitment
	input       *schnorrSignInput
	commitments map[PartyID]*frost.Commitment
	shares      map[PartyID]*frost.SignatureShare
	pkg         *frost.SigningPackage
	step        uint32
	signature   []byte
}

func (p *frostSignProtocol) start() ([]outMsg, error) {
	b, err := p.own.MarshalBinary()
	if err != nil {
		return nil, err
	}
	p.step = 1
	return []outMsg{{broadcast: true, round: 1, payload: b}}, nil
}

func (p *frostSignProtocol) handle(in inMsg) ([]outMsg, error) {
	switch in.round {
	case 1:
		c, err := frost.ParseCommitment(in.payload)
		if err != nil || c.Identifier() != p.ids[in.from] || c.Suite() != p.share.PublicKey().Suite() {
			return nil, &CulpritError{Op: OpSchnorrSign, Parties: []PartyID{in.from}, Round: 1, Reason: fmt.Errorf("%w: round-1 message: not its nonce commitment", ErrMalformedMessage)}
		}
		p.commitments[in.from] = c
	case 2:
		sh, err := frost.ParseSignatureShare(in.payload)
		if err != nil || sh.Identifier() != p.ids[in.from] {
			return nil, &CulpritError{Op: OpSchnorrSign, Parties: []PartyID{in.from}, Round: 2, Reason: fmt.Errorf("%w: round-2 message: not its signature share", ErrMalformedMessage)}
		}
		p.shares[in.from] = sh
	}
	var out []outMsg
	if p.step == 1 && len(p.commitments) == len(p.signers) {
		p.pkg = &frost.SigningPackage{Message: p.input.message, Taproot: p.input.taproot}
		for _, q := range p.signers {
			p.pkg.Commitments = append(p.pkg.Commitments, p.commitments[q])
		}
		sh, err := p.share.Sign(p.nonce, p.pkg)
		if err != nil {
			return nil, fmt.Errorf("%w: Schnorr signing on %s: %w", ErrProtocol, p.self, err)
		}
		p.shares[p.self] = sh
		b, err := sh.MarshalBinary()
		if err != nil {
			return nil, err
		}
		out = append(out, outMsg{broadcast: true, round: 2, payload: b})
		p.step = 2
	}
	if p.step == 2 && p.signature == nil && len(p.shares) == len(p.signers) {
		all := make([]*frost.SignatureShare, 0, len(p.shares))
		for _, q := range p.signers {
			all = append(all, p.shares[q])
		}
		sig, err := p.share.PublicKey().Aggregate(p.pkg, all)
		if err != nil {
			return nil, blame(OpSchnorrSign, 2, p.signerIndex(), err)
		}
		p.signature = sig
	}
	return out, nil
}

// signerIndex lists the key's committee by FROST identifier, for blame.
func (p *frostSignProtocol) signerIndex() []PartyID {
	out := make([]PartyID, len(p.ids))
	for q, id := range p.ids {
		out[int(id)-1] = q
	}
	return out
}

func (p *frostSignProtocol) done() bool { return p.signature != nil }

func (p *frostSignProtocol) waitingFor() []PartyID {
	var out []PartyID
	for _, q := range p.signers {
		if q == p.self {
			continue
		}
		if _, ok := p.commitments[q]; !ok && p.step == 1 {
			out = append(out, q)
		} else if _, ok := p.shares[q]; !ok && p.step == 2 {
			out = append(out, q)
		}
	}
	return out
}

func (p *frostSignProtocol) round() uint32 { return p.step }

func (p *frostSignProtocol) broadcastRound(r uint32) (bool, bool) { return true, r == 1 || r == 2 }

// wipe drops the nonce, used or not: a nonce is never kept past its
// session.
func (p *frostSignProtocol) wipe() {
	p.nonce.Wipe()
	p.share.Wipe()
}
