package frost

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
)

// A Commitment is a signer's round-one message (RFC 9591 §5.1): the
// commitments D_i = d_i·G and E_i = e_i·G to its hiding and binding nonces.
// It is public.
type Commitment struct {
	suite   *Ciphersuite
	id      Identifier
	hiding  element
	binding element
}

// Identifier returns the signer that made the commitment.
func (c *Commitment) Identifier() Identifier { return c.id }

// Suite returns the commitment's ciphersuite.
func (c *Commitment) Suite() *Ciphersuite { return c.suite }

// MarshalBinary encodes the commitment (FORMAT.md, kind 2).
func (c *Commitment) MarshalBinary() ([]byte, error) {
	b := appendHeader(nil, kindCommitment, c.suite)
	b = appendUint16(b, uint16(c.id))
	b = append(b, c.hiding.bytes()...)
	return append(b, c.binding.bytes()...), nil
}

// ParseCommitment decodes a commitment encoded by [Commitment.MarshalBinary],
// validating both points (DeserializeElement, RFC 9591 §3.1).
func ParseCommitment(b []byte) (*Commitment, error) {
	r, s := newReader(b, kindCommitment)
	if r.err != nil {
		return nil, fmt.Errorf("frost: commitment: %w", r.err)
	}
	c := &Commitment{suite: s, id: r.identifier(), hiding: r.element(s.g), binding: r.element(s.g)}
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("frost: commitment: %w", err)
	}
	return c, nil
}

func (c *Commitment) equal(d *Commitment) bool {
	return c.suite == d.suite && c.id == d.id && c.hiding.equal(d.hiding) && c.binding.equal(d.binding)
}

// A Nonce is a signer's secret round-one state: the hiding and binding
// nonces (d_i, e_i) behind one [Commitment]. It can sign once: the first
// [KeyShare.Sign] with it consumes and wipes it, whatever the outcome, and
// every later call returns [ErrNonceUsed]. Copies of a Nonce share that
// state, so copying does not allow a second use. A Nonce has no encoding: it
// lives in memory only, and a process that stops between the rounds must
// commit afresh. It never prints its secrets.
type Nonce struct{ st *nonceState }

type nonceState struct {
	mu         sync.Mutex
	used       bool
	groupKey   []byte
	hiding     scalar
	binding    scalar
	commitment *Commitment
}

// Commitment returns the public commitment to the nonce, to be sent to the
// coordinator.
func (n *Nonce) Commitment() *Commitment {
	if n == nil || n.st == nil {
		return nil
	}
	return n.st.commitment
}

// Used reports whether the nonce has been consumed or wiped.
func (n *Nonce) Used() bool {
	if n == nil || n.st == nil {
		return true
	}
	n.st.mu.Lock()
	defer n.st.mu.Unlock()
	return n.st.used
}

// Wipe discards the nonce without signing.
func (n *Nonce) Wipe() {
	if h, b := n.take(); h != nil {
		h.wipe()
		b.wipe()
	}
}

// take marks the nonce used and hands its secrets to the caller, once.
func (n *Nonce) take() (hiding, binding scalar) {
	if n == nil || n.st == nil {
		return nil, nil
	}
	n.st.mu.Lock()
	defer n.st.mu.Unlock()
	if n.st.used {
		return nil, nil
	}
	n.st.used = true
	hiding, binding = n.st.hiding, n.st.binding
	n.st.hiding, n.st.binding = nil, nil
	return hiding, binding
}

// String describes the nonce without its secrets.
func (n *Nonce) String() string {
	if c := n.Commitment(); c != nil {
		return fmt.Sprintf("frost.Nonce{participant %d, used %t, secret [redacted]}", c.id, n.Used())
	}
	return "frost.Nonce{}"
}

// GoString is String, so that %#v does not print the secrets either.
func (n *Nonce) GoString() string { return n.String() }

// Format prints String for every verb.
func (n *Nonce) Format(f fmt.State, _ rune) { fmt.Fprint(f, n.String()) }

// LogValue keeps the secrets out of structured logs.
func (n *Nonce) LogValue() slog.Value { return slog.StringValue(n.String()) }

// Commit runs round one (RFC 9591 §5.1): it draws the hiding and binding
// nonces with nonce_generate (§4.1: H3 over 32 bytes from rand and the
// secret share, so that a weak rand alone does not repeat nonces) and
// returns the secret [Nonce], to keep, and its [Commitment], to send to the
// coordinator. Use a fresh Commit for every signing session. rand is
// normally crypto/rand.Reader (nil means crypto/rand.Reader); the hiding
// randomness is read before the binding randomness.
func (k *KeyShare) Commit(rand io.Reader) (*Nonce, *Commitment, error) {
	if k.secret == nil {
		return nil, nil, ErrWiped
	}
	rand = orCryptoRand(rand)
	g := k.public.suite.g
	sk := k.secret.bytes()
	defer clear(sk)
	var buf [32]byte
	defer clear(buf[:])
	gen := func() (scalar, error) {
		if _, err := io.ReadFull(rand, buf[:]); err != nil {
			return nil, fmt.Errorf("frost: nonce randomness: %w", err)
		}
		return k.public.suite.h3(buf[:], sk), nil
	}
	d, err := gen()
	if err != nil {
		return nil, nil, err
	}
	e, err := gen()
	if err != nil {
		d.wipe()
		return nil, nil, err
	}
	c := &Commitment{
		suite:   k.public.suite,
		id:      k.id,
		hiding:  g.newElement().scalarBaseMult(d),
		binding: g.newElement().scalarBaseMult(e),
	}
	st := &nonceState{groupKey: k.public.key.bytes(), hiding: d, binding: e, commitment: c}
	return &Nonce{st: st}, c, nil
}

// Taproot selects BIP-341 key-path tweaking in the BIP-340 mode: the
// signature verifies under the output key Q = P + t·G with t =
// hash_TapTweak(bytes(P) || MerkleRoot), where P is the group key with even
// Y. The signers compute their shares for Q without using t; the tweak term
// c·t enters once, when the coordinator aggregates (as in BIP-327 and the
// draft FROST-for-BIP-340 BIP), so a signer's share never depends on it
// beyond a sign.
type Taproot struct {
	// MerkleRoot is the 32-byte root of the script tree, or empty for an
	// output with no script path (t = hash_TapTweak(bytes(P)), BIP-86).
	MerkleRoot []byte
}

// A SigningPackage is what the coordinator sends to each signer in round two
// (RFC 9591 §5.2) and uses to aggregate: the message, one commitment from
// every chosen signer (in any order), and in the BIP-340 mode an optional
// Taproot tweak. Every signer must check that the message is one it agrees
// to sign before calling [KeyShare.Sign].
type SigningPackage struct {
	// Message is the message to sign, of any length.
	Message []byte
	// Commitments holds one round-one commitment per chosen signer; at
	// least the key's threshold, each from a different participant.
	Commitments []*Commitment
	// Taproot, in the BIP-340 mode only, selects the BIP-341 output key
	// to sign for; nil signs for the x-only group key itself.
	Taproot *Taproot
}

// A SignatureShare is a signer's round-two output z_i (RFC 9591 §5.2). It is
// public.
type SignatureShare struct {
	suite *Ciphersuite
	id    Identifier
	z     scalar
}

// Identifier returns the signer that made the share.
func (s *SignatureShare) Identifier() Identifier { return s.id }

// MarshalBinary encodes the share (FORMAT.md, kind 3).
func (s *SignatureShare) MarshalBinary() ([]byte, error) {
	b := appendHeader(nil, kindSignatureShare, s.suite)
	b = appendUint16(b, uint16(s.id))
	return append(b, s.z.bytes()...), nil
}

// ParseSignatureShare decodes a share encoded by
// [SignatureShare.MarshalBinary] (DeserializeScalar, RFC 9591 §5.3).
func ParseSignatureShare(b []byte) (*SignatureShare, error) {
	r, s := newReader(b, kindSignatureShare)
	if r.err != nil {
		return nil, fmt.Errorf("frost: signature share: %w", r.err)
	}
	sh := &SignatureShare{suite: s, id: r.identifier(), z: r.scalar(s.g)}
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("frost: signature share: %w", err)
	}
	return sh, nil
}

// Sign runs round two (RFC 9591 §5.2) for the signer's nonce and the
// coordinator's package and returns the signer's share:
//
//	z_i = d_i + e_i·ρ_i + λ_i·x_i·c
//
// In the BIP-340 mode both nonces are negated when the group commitment R
// has odd Y, and x_i is negated when the verification key (the group key, or
// the Taproot output key) has odd Y.
//
// Sign consumes the nonce on every call, successful or not; a second call
// with it returns [ErrNonceUsed]. It checks that the package carries exactly
// the nonce's commitment for this signer ([ErrNonceMismatch]) and that its
// signers are distinct participants of the key, at least the threshold
// ([ErrInvalidPackage]).
func (k *KeyShare) Sign(nonce *Nonce, pkg *SigningPackage) (*SignatureShare, error) {
	if k.secret == nil {
		return nil, ErrWiped
	}
	d, e := nonce.take()
	if d == nil {
		return nil, ErrNonceUsed
	}
	defer d.wipe()
	defer e.wipe()
	own := nonce.st.commitment
	if own.id != k.id || own.suite != k.public.suite || !slices.Equal(nonce.st.groupKey, k.public.key.bytes()) {
		return nil, errf(ErrNonceMismatch, "nonce of participant %d under another key", own.id)
	}
	ses, err := k.public.newSession(pkg)
	if err != nil {
		return nil, err
	}
	if c, ok := ses.comm[k.id]; !ok || !c.equal(own) {
		return nil, errf(ErrNonceMismatch, "package lacks the commitment of participant %d", k.id)
	}
	g := k.public.suite.g
	// Secret part: ±(d + e·ρ) + (λ·c·g)·x.
	nz := g.newScalar().mul(e, ses.rho[k.id])
	defer nz.wipe()
	nz.add(nz, d)
	if ses.negR {
		nz.negate(nz)
	}
	kx := ses.keyFactor(k.id)
	defer kx.wipe()
	kx.mul(kx, k.secret)
	z := g.newScalar().add(nz, kx)
	return &SignatureShare{suite: k.public.suite, id: k.id, z: z}, nil
}
