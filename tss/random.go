package tss

import (
	"crypto/sha512"
	"fmt"
	"io"

	"github.com/keyquorum/keyquorum/internal/drbg"
)

// sessionRand returns the randomness of one protocol session: an
// HMAC_DRBG (NIST SP 800-90A Rev. 1, §10.1.2, SHA-512) seeded with 48 bytes
// of Config.Rand, personalized with the operation.
//
// tss-lib v2.0.2 draws its secrets (key share polynomials, nonces k and γ,
// Paillier randomness, proof randomness) from Parameters.Rand and
// Parameters.PartialKeyRand, some of it in goroutines of its own, and
// panics when a read fails (common.MustGetRandomInt), which would kill the
// process. So Config.Rand, which can fail (an HSM generator behind
// hsmshare.Random), is read once here, before tss-lib starts: a failure
// fails the session cleanly, and the reader tss-lib gets cannot fail (it
// would reseed from Config.Rand only after 2^48 requests).
func (e *Engine) sessionRand(op Operation) (io.Reader, error) {
	r, err := drbg.NewReader(e.cfg.Rand, sha512.New, "keyquorum tss session "+string(op))
	if err != nil {
		return nil, fmt.Errorf("tss: %s on %s: draw the session's randomness from Config.Rand: %w", op, e.net.Self(), err)
	}
	return r, nil
}
