package hsmshare

import (
	"context"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/miekg/pkcs11"

	"github.com/keyquorum/keyquorum/internal/drbg"
)

// Reseed bounds of [Random]: it draws fresh entropy from both the token and
// the operating system after this many reads or bytes since the last draw,
// and before any single read larger than drbg.MaxRequestBytes (64 KiB).
const (
	// RandomReseedReads is how many reads one seed of a Random serves.
	RandomReseedReads = 1024
	// RandomReseedBytes is how many bytes one seed of a Random serves.
	RandomReseedBytes = 1 << 20
)

// randomPersonalization is the SP 800-90A personalization string of the
// generator, followed by the token's serial number.
const randomPersonalization = "keyquorum hsmshare random v1\x00"

// Random is the randomness source of a site: an io.Reader whose output is
// unpredictable as long as either the token's generator (C_GenerateRandom)
// or the operating system's (crypto/rand) is, and never comes from the
// token alone.
//
// # Construction
//
// Random is an HMAC_DRBG with SHA-512 (NIST SP 800-90A Rev. 1, §10.1.2,
// no prediction resistance, 256-bit security strength):
//
//   - instantiate: entropy_input = T(32) || O(32), nonce = O(16),
//     personalization = "keyquorum hsmshare random v1" || 0x00 || token serial;
//   - reseed: entropy_input = T(32) || O(32), no additional input;
//
// where T(n) is n bytes of C_GenerateRandom and O(n) n bytes of crypto/rand.
// HMAC_DRBG derives its whole state from HMAC over all of the seed
// material, so an attacker who knows or chooses one half of the entropy
// input still faces 256 unknown bits in the other. It reseeds from both
// sources after [RandomReseedReads] reads or [RandomReseedBytes] bytes,
// and before any single read of more than 64 KiB, far inside the
// standard's limits (2^48 requests, 2^19 bits per request).
//
// # Failures
//
// A token failure is never hidden: a read that needs the token's
// generator (the first, and every reseed) and cannot get it returns an
// error wrapping [ErrRandomFailed] and the PKCS#11 error, writes nothing
// useful into the buffer, and does not fall back to the operating system
// alone. The next read tries the token again.
//
// Random is safe for concurrent use. It wipes nothing it does not own:
// miekg/pkcs11 frees the C buffer of C_GenerateRandom without wiping it.
type Random struct {
	// hsm fills b from the token's generator.
	hsm func(ctx context.Context, b []byte) error
	// os fills b from the operating system's generator.
	os func(b []byte)
	// usable returns ErrClosed once the token is closed.
	usable func() error
	who    string

	mu    sync.Mutex
	d     *drbg.HMAC
	reads int
	bytes int
	pers  []byte

	hsmDraws atomic.Uint64
	served   atomic.Uint64
	out      atomic.Uint64
}

// RandomStats counts what a [Random] did since it was made.
type RandomStats struct {
	// TokenDraws is how many times it drew entropy from the token
	// (instantiation and every reseed).
	TokenDraws uint64 `json:"token_draws"`
	// Reads is how many reads it served.
	Reads uint64 `json:"reads"`
	// Bytes is how many random bytes it returned.
	Bytes uint64 `json:"bytes"`
}

// Random returns a new randomness source that mixes this token's
// generator with the operating system's (see [Random] for the
// construction). It draws its first seed at once, so a token whose
// generator fails is reported here.
//
// A token that does not announce a generator (CKF_RNG unset in its
// CK_TOKEN_INFO) is refused with an error wrapping [ErrNoRNG].
func (t *Token) Random(ctx context.Context) (*Random, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	if err := requireRNG(t.flags, t.describe()); err != nil {
		return nil, err
	}
	r := newRandom(t.describe(), []byte(t.serial), t.generateRandom, osRandom)
	r.usable = t.usable
	if err := r.seed(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// requireRNG returns an error wrapping ErrNoRNG unless flags (the token's
// CK_TOKEN_INFO.flags) has CKF_RNG: PKCS#11 v2.40 §3.2, "CKF_RNG: True if
// the token has its own random number generator".
func requireRNG(flags uint, who string) error {
	if flags&pkcs11.CKF_RNG != 0 {
		return nil
	}
	return fmt.Errorf("%w: %s does not announce a random number generator (CKF_RNG), so its generator cannot be mixed into the site's secrets; use a token with one, or accept the operating system's generator alone with the documented opt-out (keyquorum Config.AllowNoTokenRNG, kqnode init --allow-no-token-rng)", ErrNoRNG, who)
}

// generateRandom fills b with C_GenerateRandom on a pooled session.
func (t *Token) generateRandom(ctx context.Context, b []byte) error {
	if err := t.usable(); err != nil {
		return err
	}
	return t.pool.with(ctx, func(sh pkcs11.SessionHandle) error {
		got, err := t.mod.ctx.GenerateRandom(sh, len(b))
		if err != nil {
			return err
		}
		defer clear(got)
		if len(got) != len(b) {
			return fmt.Errorf("C_GenerateRandom returned %d bytes, asked for %d", len(got), len(b))
		}
		copy(b, got)
		return nil
	})
}

func osRandom(b []byte) { rand.Read(b) } // never fails since Go 1.24

func newRandom(who string, serial []byte, hsm func(context.Context, []byte) error, os func([]byte)) *Random {
	pers := append([]byte(randomPersonalization), serial...)
	return &Random{hsm: hsm, os: os, who: who, pers: pers, usable: func() error { return nil }}
}

// seed instantiates (first call) or reseeds the generator from both
// sources. It runs with r.mu held, except from Token.Random.
func (r *Random) seed(ctx context.Context) error {
	var in [80]byte // T(32) || O(32) || O(16)
	defer clear(in[:])
	if err := r.hsm(ctx, in[:32]); err != nil {
		if errors.Is(err, ErrClosed) || ctx.Err() != nil {
			return fmt.Errorf("%w: draw random bytes from %s: %w", ErrRandomFailed, r.who, err)
		}
		return fmt.Errorf("%w: C_GenerateRandom on %s: %w; every secret of this site mixes in the token's generator, so nothing was made: check the token (its log, its connection) and restart the site", ErrRandomFailed, r.who, err)
	}
	r.os(in[32:])
	if r.d == nil {
		r.d = drbg.New(sha512.New, in[:64], in[64:], r.pers)
	} else {
		r.d.Reseed(in[:64], nil)
	}
	r.reads, r.bytes = 0, 0
	r.hsmDraws.Add(1)
	return nil
}

// Read fills p with random bytes. It is ReadContext without a deadline.
func (r *Random) Read(p []byte) (int, error) {
	return r.ReadContext(context.Background(), p)
}

// ReadContext fills p with random bytes; ctx bounds the wait for a token
// session when the generator reseeds. On error nothing of p is usable (it
// is zeroed) and the error wraps [ErrRandomFailed], or [ErrClosed] once the
// token is closed.
func (r *Random) ReadContext(ctx context.Context, p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usable(); err != nil {
		clear(p)
		return 0, err
	}
	if r.d == nil || r.reads >= RandomReseedReads || r.bytes >= RandomReseedBytes || len(p) > drbg.MaxRequestBytes {
		if err := r.seed(ctx); err != nil {
			clear(p)
			return 0, err
		}
	}
	for off := 0; off < len(p); {
		chunk := p[off:min(len(p), off+drbg.MaxRequestBytes)]
		if err := r.d.Generate(chunk, nil); err != nil {
			// Unreachable within RandomReseedReads; reported, not hidden.
			clear(p)
			return 0, fmt.Errorf("%w: %s: %w", ErrRandomFailed, r.who, err)
		}
		off += len(chunk)
		r.reads++
	}
	r.bytes += len(p)
	r.served.Add(1)
	r.out.Add(uint64(len(p)))
	return len(p), nil
}

// Stats returns what r did so far.
func (r *Random) Stats() RandomStats {
	return RandomStats{TokenDraws: r.hsmDraws.Load(), Reads: r.served.Load(), Bytes: r.out.Load()}
}

// String describes the source (never its state).
func (r *Random) String() string { return "hsmshare.Random{" + r.who + " + operating system}" }
