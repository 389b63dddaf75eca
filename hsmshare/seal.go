package hsmshare

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Seal encrypts plaintext inside the token and returns a self-describing
// blob (see FORMAT.md) bound to hdr, the format version, the scheme and this
// key's ID. plaintext may be empty and at most [MaxPlaintextSize] bytes; it is
// neither kept nor modified. The caller still owns and wipes it.
func (k *SealKey) Seal(ctx context.Context, hdr Header, plaintext []byte) ([]byte, error) {
	if err := k.usable(); err != nil {
		return nil, err
	}
	if err := hdr.validate(); err != nil {
		return nil, fmt.Errorf("hsmshare: seal: %w", err)
	}
	if len(plaintext) > MaxPlaintextSize {
		return nil, fmt.Errorf("hsmshare: seal %s/%s: plaintext is %d bytes, more than the %d allowed", hdr.Kind, hdr.KeyID, len(plaintext), MaxPlaintextSize)
	}
	header := appendHeader(make([]byte, 0, 64+len(hdr.Kind)+len(hdr.KeyID)+len(hdr.PartyID)), k.scheme, k.id, hdr)
	var blob []byte
	err := k.tok.pool.do(ctx, OpSeal, func(sh pkcs11.SessionHandle) error {
		var err error
		switch k.scheme {
		case SchemeGCM:
			blob, err = k.sealGCM(sh, header, plaintext)
		case SchemeCBCHMAC:
			blob, err = k.sealCBCHMAC(sh, header, plaintext)
		default:
			err = fmt.Errorf("hsmshare: unknown scheme %v", k.scheme)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("hsmshare: seal %s/%s for party %s with seal key %q: %w", hdr.Kind, hdr.KeyID, hdr.PartyID, k.label, err)
	}
	return blob, nil
}

func (k *SealKey) sealGCM(sh pkcs11.SessionHandle, header, plaintext []byte) ([]byte, error) {
	p := k.tok.mod.ctx
	// The IV is always ours and random: SoftHSM2 accepts an empty IV
	// (deterministic ciphertext) and a 0-bit tag, so neither is left to the
	// token. Random 96-bit IVs keep the collision risk negligible up to
	// 2^32 seals per key (NIST SP 800-38D §8.3).
	iv := make([]byte, gcmIVLen)
	rand.Read(iv) // never fails since Go 1.24
	gp := pkcs11.NewGCMParams(iv, header, gcmTagLen*8)
	defer gp.Free()
	if err := p.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, gp)}, k.aes); err != nil {
		return nil, err
	}
	// The output is exactly plaintext || tag, so the buffer is sized here
	// rather than by asking the token: NSS softoken answers that question
	// without room for the tag (see call_unix.go).
	ct, err := k.tok.mod.calls.encrypt(sh, plaintext, make([]byte, len(plaintext)+gcmTagLen))
	if err != nil {
		return nil, err
	}
	// Some tokens (per miekg/pkcs11's documentation, AWS CloudHSM) ignore
	// the caller's IV and write their own into the parameters: store the IV
	// actually used, but only if it has the required length.
	if used := gp.IV(); !bytes.Equal(used, iv) {
		if len(used) != gcmIVLen {
			return nil, fmt.Errorf("token used a %d-byte GCM IV, want %d", len(used), gcmIVLen)
		}
		iv = used
	}
	if len(ct) != len(plaintext)+gcmTagLen {
		return nil, fmt.Errorf("token returned %d bytes of GCM output for %d bytes of plaintext; want a %d-byte tag", len(ct), len(plaintext), gcmTagLen)
	}
	return appendBody(header, iv, ct), nil
}

func (k *SealKey) sealCBCHMAC(sh pkcs11.SessionHandle, header, plaintext []byte) ([]byte, error) {
	if k.mac == 0 {
		return nil, fmt.Errorf("%w: seal key %q has no HMAC key", ErrKeyNotFound, k.label)
	}
	p := k.tok.mod.ctx
	iv := make([]byte, cbcIVLen)
	rand.Read(iv) // never fails since Go 1.24
	if err := p.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_CBC_PAD, iv)}, k.aes); err != nil {
		return nil, err
	}
	// PKCS#7 padding always adds 1 to 16 bytes.
	want := (len(plaintext)/16 + 1) * 16
	ct, err := k.tok.mod.calls.encrypt(sh, plaintext, make([]byte, want))
	if err != nil {
		return nil, err
	}
	if len(ct) != want {
		return nil, fmt.Errorf("token returned %d bytes of CBC-PAD output for %d bytes of plaintext; want %d", len(ct), len(plaintext), want)
	}
	body := appendBody(header, iv, ct)
	// Encrypt-then-MAC over header, IV and ciphertext.
	if err := p.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil)}, k.mac); err != nil {
		return nil, err
	}
	mac, err := p.Sign(sh, body)
	if err != nil {
		return nil, err
	}
	if len(mac) != macLen {
		return nil, fmt.Errorf("token returned a %d-byte HMAC-SHA256, want %d", len(mac), macLen)
	}
	return append(body, mac...), nil
}

// Open authenticates blob and returns its plaintext, which the caller owns
// and should wipe. The blob must have been sealed by this key for exactly
// want (kind, key ID, party ID, version). Otherwise Open fails, never
// returning plaintext, with [ErrTampered] (authentication failed, or the blob
// is for another kind, key ID, party, version, seal key or token),
// [ErrCorrupted] (not a well-formed blob) or [ErrUnsupportedFormat].
func (k *SealKey) Open(ctx context.Context, blob []byte, want Header) ([]byte, error) {
	if err := k.usable(); err != nil {
		return nil, err
	}
	if err := want.validate(); err != nil {
		return nil, fmt.Errorf("hsmshare: open: %w", err)
	}
	pt, err := k.open(ctx, blob, want)
	if err != nil {
		return nil, fmt.Errorf("hsmshare: open %s/%s version %d for party %s: %w", want.Kind, want.KeyID, want.Version, want.PartyID, err)
	}
	return pt, nil
}

func (k *SealKey) open(ctx context.Context, blob []byte, want Header) ([]byte, error) {
	p, err := parseBlob(blob)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(p.sealKeyID, k.id) {
		return nil, fmt.Errorf("%w: sealed under seal key %s, not %s (%q on %s): the blob comes from another token or seal key", ErrTampered, hex.EncodeToString(p.sealKeyID), k.ID(), k.label, k.tok.describe())
	}
	for _, f := range []struct{ name, got, want string }{
		{"kind", p.hdr.Kind, want.Kind},
		{"key ID", p.hdr.KeyID, want.KeyID},
		{"party", p.hdr.PartyID, want.PartyID},
	} {
		if f.got != f.want {
			return nil, fmt.Errorf("%w: blob is for %s %q, want %q", ErrTampered, f.name, f.got, f.want)
		}
	}
	if p.hdr.Version != want.Version {
		return nil, fmt.Errorf("%w: blob is for version %d, want %d", ErrTampered, p.hdr.Version, want.Version)
	}
	// The authenticated data is rebuilt from what the caller expects, not
	// taken from the blob.
	aad := appendHeader(nil, p.scheme, k.id, want)
	if !bytes.Equal(aad, p.header) {
		return nil, fmt.Errorf("%w: header encoding differs", ErrTampered)
	}
	var pt []byte
	err = k.tok.pool.do(ctx, OpUnseal, func(sh pkcs11.SessionHandle) error {
		var oerr error
		switch p.scheme {
		case SchemeGCM:
			pt, oerr = k.openGCM(sh, aad, p)
		case SchemeCBCHMAC:
			pt, oerr = k.openCBCHMAC(sh, p)
		default:
			oerr = fmt.Errorf("%w: scheme %v", ErrUnsupportedFormat, p.scheme)
		}
		return oerr
	})
	return pt, err
}

func (k *SealKey) openGCM(sh pkcs11.SessionHandle, aad []byte, b *parsedBlob) ([]byte, error) {
	if err := k.tok.requireMechanism(pkcs11.CKM_AES_GCM, pkcs11.CKF_DECRYPT, "open blobs sealed with AES-GCM"); err != nil {
		return nil, err
	}
	p := k.tok.mod.ctx
	gp := pkcs11.NewGCMParams(b.iv, aad, gcmTagLen*8)
	defer gp.Free()
	if err := p.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, gp)}, k.aes); err != nil {
		return nil, err
	}
	pt, err := k.tok.mod.calls.decrypt(sh, b.ct, make([]byte, len(b.ct)))
	if err != nil {
		return nil, authFailure(err)
	}
	if len(pt) != len(b.ct)-gcmTagLen {
		wipe(pt)
		return nil, fmt.Errorf("%w: token returned %d bytes of plaintext for %d bytes of ciphertext", ErrTampered, len(pt), len(b.ct))
	}
	return pt, nil
}

func (k *SealKey) openCBCHMAC(sh pkcs11.SessionHandle, b *parsedBlob) ([]byte, error) {
	if k.mac == 0 {
		return nil, fmt.Errorf("%w: the blob was sealed with CBC+HMAC but seal key %q has no HMAC key on %s", ErrKeyNotFound, k.label, k.tok.describe())
	}
	if err := k.tok.requireMechanism(pkcs11.CKM_SHA256_HMAC, pkcs11.CKF_SIGN, "authenticate blobs sealed with CBC+HMAC"); err != nil {
		return nil, err
	}
	p := k.tok.mod.ctx
	// Check the MAC before decrypting anything (encrypt-then-MAC). The
	// token computes it (C_Sign) and it is compared here in constant time,
	// not with C_Verify: tokens disagree on how C_Verify reports a wrong
	// MAC (NSS softoken 3.87 says CKR_DEVICE_ERROR, which must not be
	// mistaken for tampering, SoftHSM2 CKR_SIGNATURE_INVALID). The MAC of a
	// blob is no secret: it is stored in the blob.
	if err := p.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil)}, k.mac); err != nil {
		return nil, err
	}
	mac, err := p.Sign(sh, b.macInput)
	if err != nil {
		return nil, err
	}
	if len(mac) != macLen {
		return nil, fmt.Errorf("token returned a %d-byte HMAC-SHA256, want %d", len(mac), macLen)
	}
	if !hmac.Equal(mac, b.mac) {
		return nil, fmt.Errorf("%w: the HMAC does not match", ErrTampered)
	}
	if err := p.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_CBC_PAD, b.iv)}, k.aes); err != nil {
		return nil, err
	}
	pt, err := k.tok.mod.calls.decrypt(sh, b.ct, make([]byte, len(b.ct)))
	if err != nil {
		// The MAC was valid, so only a holder of the HMAC key could have
		// made this blob; still, no plaintext leaves.
		return nil, authFailure(err)
	}
	return pt, nil
}

// authFailure maps a failed C_Decrypt to ErrTampered unless it is
// plainly a token or session problem. Tokens disagree on the code for a bad
// tag (SoftHSM2 returns CKR_GENERAL_ERROR), so no specific code is expected.
func authFailure(err error) error {
	for _, rv := range []uint{
		pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_DEVICE_ERROR,
		pkcs11.CKR_DEVICE_MEMORY, pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT,
		pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_KEY_HANDLE_INVALID, pkcs11.CKR_OBJECT_HANDLE_INVALID,
		pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, pkcs11.CKR_HOST_MEMORY, pkcs11.CKR_OPERATION_NOT_INITIALIZED,
		pkcs11.CKR_FUNCTION_CANCELED,
	} {
		if ckrIs(err, rv) {
			return err
		}
	}
	return fmt.Errorf("%w (token said: %w)", ErrTampered, err)
}
