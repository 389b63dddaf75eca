package frost

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
)

// An Identifier names a participant. It is the participant's x-coordinate on
// the sharing polynomial (RFC 9591 §3.1, NonZeroScalar) and must not be
// zero.
type Identifier uint16

// PublicKey is the public part of a threshold key: the group public key, the
// threshold, and the public share X_i = x_i·G of every participant, against
// which signature shares are verified. It holds no secret.
type PublicKey struct {
	suite     *Ciphersuite
	threshold int
	key       element
	shares    map[Identifier]element
}

// NewPublicKey checks and assembles a public key from the group public key
// and the participants' public shares (each in the suite's SerializeElement
// encoding). threshold is the number of signers required, at least 1 and at
// most the number of shares. The shares must lie on one polynomial of degree
// threshold−1 whose value at zero is groupKey; otherwise NewPublicKey returns
// an error wrapping [ErrKeyMismatch].
func NewPublicKey(suite *Ciphersuite, threshold int, groupKey []byte, shares map[Identifier][]byte) (*PublicKey, error) {
	if !suite.valid() {
		return nil, errf(ErrInvalidParameters, "unknown ciphersuite")
	}
	if threshold < 1 || threshold > len(shares) || len(shares) > maxParticipants {
		return nil, errf(ErrInvalidParameters, "threshold %d with %d shares", threshold, len(shares))
	}
	key, err := suite.g.decodeElement(groupKey)
	if err != nil {
		return nil, fmt.Errorf("frost: group key: %w", err)
	}
	p := &PublicKey{suite: suite, threshold: threshold, key: key, shares: make(map[Identifier]element, len(shares))}
	for id, b := range shares {
		if id == 0 {
			return nil, errf(ErrInvalidIdentifier, "identifier 0")
		}
		e, err := suite.g.decodeElement(b)
		if err != nil {
			return nil, fmt.Errorf("frost: public share of participant %d: %w", id, err)
		}
		p.shares[id] = e
	}
	if err := p.checkConsistent(); err != nil {
		return nil, err
	}
	return p, nil
}

// checkConsistent checks that the public shares lie on one polynomial of
// degree threshold−1 whose value at zero is the group key. Interpolating the
// first threshold shares in the exponent, the value at every point x of the
// others and at zero must match: X(x) = Σ_i λ_i(x)·X_i. Instead of checking
// each equation, it checks a random linear combination of them, with
// coefficients hashed from the whole key, so the cost is about n+1 scalar
// multiplications rather than n·t; a key that fails any equation passes
// with probability about 1/order.
func (p *PublicKey) checkConsistent() error {
	g := p.suite.g
	ids := p.Participants()
	base, others := ids[:p.threshold], ids[p.threshold:]
	xs := make([]scalar, len(base))
	for i, id := range base {
		xs[i] = identifierScalar(g, id)
	}
	// w_i = 1 / Π_{j≠i} (x_i − x_j), so that λ_i(x) = w_i · Π_{j≠i} (x − x_j).
	w := make([]scalar, len(base))
	for i := range base {
		d := g.newScalar().setUint16(1)
		for j := range base {
			if j != i {
				d.mul(d, g.newScalar().sub(xs[i], xs[j]))
			}
		}
		w[i] = g.newScalar().invert(d)
	}
	seed, _ := p.MarshalBinary()
	coef := make([]scalar, len(base))
	for i := range coef {
		coef[i] = g.newScalar()
	}
	lhs := g.newElement()
	check := func(k int, x scalar, target element) {
		r := p.suite.hashToScalar("pubkey-check", seed, appendUint16(nil, uint16(k)))
		lhs.add(lhs, g.newElement().scalarMult(r, target))
		// suffix[i] = Π_{j≥i} (x − x_j); prefix runs forward.
		suffix := make([]scalar, len(base)+1)
		suffix[len(base)] = g.newScalar().setUint16(1)
		for j := len(base) - 1; j >= 0; j-- {
			suffix[j] = g.newScalar().mul(suffix[j+1], g.newScalar().sub(x, xs[j]))
		}
		prefix := g.newScalar().setUint16(1)
		for i := range base {
			l := g.newScalar().mul(prefix, suffix[i+1])
			l.mul(l, w[i]).mul(l, r)
			coef[i].add(coef[i], l)
			prefix.mul(prefix, g.newScalar().sub(x, xs[i]))
		}
	}
	check(0, g.newScalar(), p.key)
	for k, id := range others {
		check(k+1, identifierScalar(g, id), p.shares[id])
	}
	rhs := g.newElement()
	for i, id := range base {
		rhs.add(rhs, g.newElement().scalarMult(coef[i], p.shares[id]))
	}
	if !lhs.equal(rhs) {
		return errf(ErrKeyMismatch, "public shares do not lie on one polynomial of degree %d through the group key", p.threshold-1)
	}
	return nil
}

// lagrange returns the Lagrange basis polynomial of i over ids evaluated at
// x: Π_{j≠i} (x − x_j)/(x_i − x_j). At x = 0 it is derive_interpolating_value
// of RFC 9591 §4.2. ids must be distinct, non-zero and contain i.
func lagrange(g group, ids []Identifier, i Identifier, x scalar) scalar {
	num := g.newScalar().setUint16(1)
	den := g.newScalar().setUint16(1)
	xi := identifierScalar(g, i)
	for _, j := range ids {
		if j == i {
			continue
		}
		xj := identifierScalar(g, j)
		num.mul(num, g.newScalar().sub(x, xj))
		den.mul(den, g.newScalar().sub(xi, xj))
	}
	return num.mul(num, g.newScalar().invert(den))
}

// Suite returns the key's ciphersuite.
func (p *PublicKey) Suite() *Ciphersuite { return p.suite }

// Threshold returns the number of signers required.
func (p *PublicKey) Threshold() int { return p.threshold }

// Participants returns the identifiers of all participants, ascending.
func (p *PublicKey) Participants() []Identifier {
	return slices.Sorted(maps.Keys(p.shares))
}

// Bytes returns the group public key in the suite's SerializeElement
// encoding (32 bytes for Ed25519; 33 bytes, compressed, for both secp256k1
// suites). For Ed25519 it is the key that crypto/ed25519 verifies against;
// for the BIP-340 mode see [PublicKey.XOnly] and
// [PublicKey.TaprootOutputKey].
func (p *PublicKey) Bytes() []byte { return p.key.bytes() }

// Share returns the public share X_i of participant id, or an error wrapping
// [ErrInvalidIdentifier].
func (p *PublicKey) Share(id Identifier) ([]byte, error) {
	e, ok := p.shares[id]
	if !ok {
		return nil, errf(ErrInvalidIdentifier, "no participant %d", id)
	}
	return e.bytes(), nil
}

// Equal reports whether p and q are the same key with the same participants
// and threshold.
func (p *PublicKey) Equal(q *PublicKey) bool {
	if p == nil || q == nil || p.suite != q.suite || p.threshold != q.threshold ||
		len(p.shares) != len(q.shares) || !p.key.equal(q.key) {
		return false
	}
	for id, e := range p.shares {
		f, ok := q.shares[id]
		if !ok || !e.equal(f) {
			return false
		}
	}
	return true
}

// MarshalBinary encodes the public key (FORMAT.md, kind 1).
func (p *PublicKey) MarshalBinary() ([]byte, error) {
	b := appendHeader(nil, kindPublicKey, p.suite)
	b = appendUint16(b, uint16(p.threshold))
	b = append(b, p.key.bytes()...)
	b = appendUint16(b, uint16(len(p.shares)))
	for _, id := range p.Participants() {
		b = appendUint16(b, uint16(id))
		b = append(b, p.shares[id].bytes()...)
	}
	return b, nil
}

// ParsePublicKey decodes and checks a public key encoded by
// [PublicKey.MarshalBinary], with the checks of [NewPublicKey].
func ParsePublicKey(b []byte) (*PublicKey, error) {
	r, s := newReader(b, kindPublicKey)
	if r.err != nil {
		return nil, fmt.Errorf("frost: public key: %w", r.err)
	}
	t := int(r.uint16())
	key := r.next(s.g.elementLen())
	n := r.count()
	shares := make(map[Identifier][]byte, min(n, maxParticipants))
	var last Identifier
	for range n {
		id := r.identifier()
		e := r.next(s.g.elementLen())
		if r.err != nil {
			break
		}
		if id <= last {
			r.fail(errEncoding("participants not strictly ascending at %d", id))
			break
		}
		last = id
		shares[id] = e
	}
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("frost: public key: %w", err)
	}
	return NewPublicKey(s, t, key, shares)
}

// A KeyShare is one participant's secret signing share x_i together with the
// [PublicKey] it belongs to. It never prints its secret: String, GoString,
// Format and LogValue are redacted. Call [KeyShare.Wipe] when done with it.
type KeyShare struct {
	id     Identifier
	secret scalar // nil once wiped
	public *PublicKey
}

// NewKeyShare returns participant id's key share with the secret share
// secret (SerializeScalar encoding), after checking that secret·G is the
// participant's public share in pub (else an error wrapping
// [ErrKeyMismatch]). It copies secret; the caller should overwrite its own
// copy.
func NewKeyShare(pub *PublicKey, id Identifier, secret []byte) (*KeyShare, error) {
	if pub == nil {
		return nil, errf(ErrInvalidParameters, "nil public key")
	}
	want, ok := pub.shares[id]
	if !ok {
		return nil, errf(ErrInvalidIdentifier, "no participant %d", id)
	}
	s, err := pub.suite.g.decodeScalar(secret)
	if err != nil {
		return nil, fmt.Errorf("frost: secret share: %w", err)
	}
	if !pub.suite.g.newElement().scalarBaseMult(s).equal(want) {
		s.wipe()
		return nil, errf(ErrKeyMismatch, "secret share of participant %d", id)
	}
	return &KeyShare{id: id, secret: s, public: pub}, nil
}

// Identifier returns the participant's identifier.
func (k *KeyShare) Identifier() Identifier { return k.id }

// PublicKey returns the public key the share belongs to.
func (k *KeyShare) PublicKey() *PublicKey { return k.public }

// SecretBytes returns a copy of the secret share in the suite's
// SerializeScalar encoding, for sealing. The caller owns the copy and should
// overwrite it as soon as it is sealed. It returns an error wrapping
// [ErrWiped] after [KeyShare.Wipe].
func (k *KeyShare) SecretBytes() ([]byte, error) {
	if k.secret == nil {
		return nil, ErrWiped
	}
	return k.secret.bytes(), nil
}

// Wipe overwrites the secret share with zero; the share is unusable
// afterwards. Go may have left copies elsewhere in memory (the garbage
// collector moves nothing, but stack frames and temporaries of the
// arithmetic are not cleared), so this is best effort.
func (k *KeyShare) Wipe() {
	if k.secret != nil {
		k.secret.wipe()
		k.secret = nil
	}
}

// String describes the share without its secret.
func (k *KeyShare) String() string {
	if k == nil {
		return "frost.KeyShare(nil)"
	}
	return fmt.Sprintf("frost.KeyShare{participant %d, %s, secret [redacted]}", k.id, k.public.suite.id)
}

// GoString is String, so that %#v does not print the secret either.
func (k *KeyShare) GoString() string { return k.String() }

// Format prints String for every verb, so that no verb prints the secret.
func (k *KeyShare) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue keeps the secret out of structured logs.
func (k *KeyShare) LogValue() slog.Value { return slog.StringValue(k.String()) }
