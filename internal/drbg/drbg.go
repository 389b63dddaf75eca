// Package drbg implements HMAC_DRBG, the HMAC-based deterministic random bit
// generator of NIST SP 800-90A Rev. 1, §10.1.2, without prediction
// resistance and without a derivation function (HMAC_DRBG needs none).
//
// keyquorum uses it in two places: hsmshare.Random seeds one from the HSM's
// generator and the operating system's together, and each protocol session
// runs its own instance seeded from that mixed source ([NewReader]), so
// that code which cannot handle a read error (tss-lib panics on one) gets a
// reader that cannot fail.
package drbg

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
)

const (
	// MaxRequestBytes is the most one Generate call returns: 2^19 bits,
	// max_number_of_bits_per_request of SP 800-90A Rev. 1, Table 2.
	MaxRequestBytes = 1 << 16
	// ReseedInterval is how many Generate calls one seed serves before
	// Generate returns [ErrReseedRequired]: 2^48, reseed_interval of
	// SP 800-90A Rev. 1, Table 2.
	ReseedInterval = 1 << 48
)

var (
	// ErrReseedRequired means the generator has served ReseedInterval
	// requests since it was last seeded; call Reseed.
	ErrReseedRequired = errors.New("drbg: reseed required")
	// ErrRequestTooLarge means a Generate call asked for more than
	// MaxRequestBytes.
	ErrRequestTooLarge = errors.New("drbg: request larger than 2^19 bits")
)

// HMAC is the working state of one HMAC_DRBG instance (SP 800-90A Rev. 1
// §10.1.2.1: V, Key and reseed_counter). It is not safe for concurrent use.
type HMAC struct {
	newHash func() hash.Hash
	k, v    []byte
	// mac is HMAC keyed with k, made once per key (hmac.New copies the
	// key, so k may be overwritten afterwards).
	mac     hash.Hash
	counter uint64
}

// New instantiates an HMAC_DRBG over the hash newHash with the given
// entropy input, nonce and personalization string (§10.1.2.3). The caller
// is responsible for the entropy input's strength: at least the security
// strength (32 bytes for 256 bits), and a nonce of at least half of it.
func New(newHash func() hash.Hash, entropy, nonce, personalization []byte) *HMAC {
	n := newHash().Size()
	d := &HMAC{newHash: newHash, k: make([]byte, n), v: make([]byte, n)}
	for i := range d.v {
		d.v[i] = 0x01
	}
	d.mac = hmac.New(newHash, d.k)
	d.update(entropy, nonce, personalization)
	d.counter = 1
	return d
}

// update is HMAC_DRBG_Update (§10.1.2.2) with provided_data the
// concatenation of provided.
func (d *HMAC) update(provided ...[]byte) {
	empty := true
	for _, p := range provided {
		if len(p) > 0 {
			empty = false
		}
	}
	for _, b := range []byte{0x00, 0x01} {
		// K = HMAC(K, V || b || provided_data)
		d.mac.Reset()
		d.mac.Write(d.v)
		d.mac.Write([]byte{b})
		for _, p := range provided {
			d.mac.Write(p)
		}
		d.k = d.mac.Sum(d.k[:0])
		d.mac = hmac.New(d.newHash, d.k)
		// V = HMAC(K, V)
		d.mac.Write(d.v)
		d.v = d.mac.Sum(d.v[:0])
		if empty {
			return
		}
	}
}

// Reseed mixes fresh entropy input and optional additional input into the
// state and resets the reseed counter (§10.1.2.4).
func (d *HMAC) Reseed(entropy, additional []byte) {
	d.update(entropy, additional)
	d.counter = 1
}

// Generate fills out with pseudorandom bytes (§10.1.2.5), mixing in the
// optional additional input. It fails only when out is longer than
// MaxRequestBytes or the generator must be reseeded.
func (d *HMAC) Generate(out, additional []byte) error {
	if len(out) > MaxRequestBytes {
		return fmt.Errorf("%w: %d bytes", ErrRequestTooLarge, len(out))
	}
	if d.counter > ReseedInterval {
		return ErrReseedRequired
	}
	if len(additional) > 0 {
		d.update(additional)
	}
	for off := 0; off < len(out); {
		// V = HMAC(K, V); the output is V || V' || ...
		d.mac.Reset()
		d.mac.Write(d.v)
		d.v = d.mac.Sum(d.v[:0])
		off += copy(out[off:], d.v)
	}
	d.update(additional)
	d.counter++
	return nil
}

// Wipe overwrites the state; the generator must not be used afterwards.
func (d *HMAC) Wipe() {
	clear(d.k)
	clear(d.v)
	d.mac = hmac.New(d.newHash, d.k)
	d.counter = ReseedInterval + 1
}

// Reader is an io.Reader over an HMAC_DRBG seeded from a parent source. It
// is safe for concurrent use, and its Read never fails once NewReader has
// succeeded: it reseeds from the parent only after ReseedInterval requests,
// which no protocol session comes near, and only then can a parent error
// surface.
type Reader struct {
	mu     sync.Mutex
	parent io.Reader
	d      *HMAC
	err    error
}

// seedBytes is what a Reader draws from its parent: 32 bytes of entropy
// input (256-bit security strength) and a 16-byte nonce.
const seedBytes = 48

// NewReader returns a Reader seeded with 48 bytes read from parent, with
// personalization naming its use. An error reading parent is returned,
// wrapped, and no Reader is made.
func NewReader(parent io.Reader, newHash func() hash.Hash, personalization string) (*Reader, error) {
	var seed [seedBytes]byte
	defer clear(seed[:])
	if _, err := io.ReadFull(parent, seed[:]); err != nil {
		return nil, fmt.Errorf("drbg: seed from parent source: %w", err)
	}
	return &Reader{parent: parent, d: New(newHash, seed[:32], seed[32:], []byte(personalization))}, nil
}

// Read fills p with pseudorandom bytes.
func (r *Reader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	for off := 0; off < len(p); {
		chunk := p[off:min(len(p), off+MaxRequestBytes)]
		err := r.d.Generate(chunk, nil)
		if errors.Is(err, ErrReseedRequired) {
			var seed [32]byte
			if _, rerr := io.ReadFull(r.parent, seed[:]); rerr != nil {
				r.err = fmt.Errorf("drbg: reseed from parent source: %w", rerr)
				clear(p)
				return 0, r.err
			}
			r.d.Reseed(seed[:], nil)
			clear(seed[:])
			continue
		}
		if err != nil {
			clear(p)
			return 0, err
		}
		off += len(chunk)
	}
	return len(p), nil
}

// Wipe overwrites the generator's state; later reads fail.
func (r *Reader) Wipe() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.d.Wipe()
	r.err = errors.New("drbg: reader wiped")
}
