package hsmshare

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/pkcs11"
)

// Token is an open, logged-in PKCS#11 token with a pool of sessions. It is
// safe for concurrent use. Several Tokens (for different tokens, or even the
// same one) may be open at once in one process; they share the loaded module.
type Token struct {
	mod  *module
	slot uint

	label        string
	serial       string
	manufacturer string
	model        string
	modulePath   string
	object       string
	scheme       Scheme
	// flags are the token's CK_TOKEN_INFO flags, read at Open.
	flags uint

	pool *sessionPool
	// mechs holds the flags (CKF_ENCRYPT, ...) of every mechanism this
	// package uses that the token lists, read once at Open.
	mechs map[uint]uint

	// createMu serializes key creation in this process so that two
	// concurrent Create calls cannot both pass the "label unused" check.
	createMu sync.Mutex

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open loads the configured PKCS#11 module (once per process), finds the
// token, opens a pool of sessions and logs the user in once.
//
// Failures are distinguishable with errors.Is: [ErrInvalidConfig],
// [ErrModuleNotFound], [ErrTokenNotFound], [ErrTokenAmbiguous], [ErrWrongPIN],
// [ErrPINLocked]. Open never retries a login, so a wrong PIN costs exactly one
// attempt of the token's retry counter.
func Open(ctx context.Context, cfg Config) (*Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	pin, err := r.readPIN()
	if err != nil {
		return nil, err
	}
	defer wipe(pin)

	mod, err := acquireModule(r.module, r.initArgs)
	if err != nil {
		return nil, err
	}
	t := &Token{mod: mod, modulePath: r.module, object: r.object, scheme: r.scheme}
	if err := t.open(ctx, r, pin); err != nil {
		if rerr := mod.release(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, err
	}
	return t, nil
}

func (t *Token) open(ctx context.Context, r *resolved, pin []byte) error {
	slot, info, err := findToken(t.mod, r)
	if err != nil {
		return err
	}
	t.slot = slot
	t.label = strings.TrimRight(info.Label, " ")
	t.serial = strings.TrimRight(info.SerialNumber, " ")
	t.manufacturer = strings.TrimRight(info.ManufacturerID, " ")
	t.model = strings.TrimRight(info.Model, " ")
	t.flags = info.Flags
	who := t.describe()

	if info.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
		return fmt.Errorf("%w: %s is not initialized", ErrTokenNotFound, who)
	}
	if info.Flags&pkcs11.CKF_USER_PIN_LOCKED != 0 {
		return fmt.Errorf("%w: %s: the user PIN is locked; the security officer must unlock or reset it", ErrPINLocked, who)
	}

	if t.mechs, err = readMechanisms(t.mod.ctx, slot); err != nil {
		return fmt.Errorf("hsmshare: list mechanisms of %s: %w", who, err)
	}

	if err := ctx.Err(); err != nil {
		return err
	}
	n, err := poolSize(r.sessions, info)
	if err != nil {
		return fmt.Errorf("hsmshare: open sessions on %s: %w", who, err)
	}
	pool, err := openSessionPool(t.mod.ctx, slot, n)
	if err != nil {
		return fmt.Errorf("hsmshare: open sessions on %s: %w", who, err)
	}
	sh, _ := pool.get(context.Background()) // fresh pool: a session is free
	err = t.mod.login(slot, sh, pin)
	pool.put(sh)
	if err != nil {
		pool.drain()
		pool.closeSessions()
		return t.loginError(err)
	}
	pool.observe = r.observe
	t.pool = pool
	return nil
}

func (t *Token) loginError(err error) error {
	who := t.describe()
	switch {
	case errors.Is(err, ErrWrongPIN):
		return fmt.Errorf("%w for %s (it differs from the PIN this process logged in with)", ErrWrongPIN, who)
	case ckrIs(err, pkcs11.CKR_PIN_INCORRECT), ckrIs(err, pkcs11.CKR_PIN_INVALID), ckrIs(err, pkcs11.CKR_PIN_LEN_RANGE):
		hint := "check the PIN source; logins are not retried"
		if info, ierr := t.mod.ctx.GetTokenInfo(t.slot); ierr == nil {
			switch {
			case info.Flags&pkcs11.CKF_USER_PIN_LOCKED != 0:
				return fmt.Errorf("%w: %s: the user PIN is now locked: %w", ErrPINLocked, who, err)
			case info.Flags&pkcs11.CKF_USER_PIN_FINAL_TRY != 0:
				hint = "one more wrong PIN locks the token"
			case info.Flags&pkcs11.CKF_USER_PIN_COUNT_LOW != 0:
				hint = "the token reports few PIN attempts left"
			}
		}
		return fmt.Errorf("%w for %s (%s): %w", ErrWrongPIN, who, hint, err)
	case ckrIs(err, pkcs11.CKR_PIN_LOCKED):
		return fmt.Errorf("%w: %s: the security officer must unlock or reset the user PIN: %w", ErrPINLocked, who, err)
	case ckrIs(err, pkcs11.CKR_PIN_EXPIRED):
		return fmt.Errorf("hsmshare: log in to %s: the user PIN has expired; change it with the token's tools: %w", who, err)
	default:
		return fmt.Errorf("hsmshare: log in to %s: %w", who, err)
	}
}

// findToken returns the one slot whose token matches r.
func findToken(mod *module, r *resolved) (uint, pkcs11.TokenInfo, error) {
	slots, err := mod.ctx.GetSlotList(true)
	if err != nil {
		return 0, pkcs11.TokenInfo{}, fmt.Errorf("hsmshare: list slots of module %s: %w", r.module, err)
	}
	var (
		matches []uint
		infos   []pkcs11.TokenInfo
		seen    []string
	)
	for _, s := range slots {
		info, err := mod.ctx.GetTokenInfo(s)
		if err != nil {
			continue // a slot whose token vanished or is unusable
		}
		label := strings.TrimRight(info.Label, " ")
		serial := strings.TrimRight(info.SerialNumber, " ")
		if info.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 {
			seen = append(seen, fmt.Sprintf("%q (serial %s)", label, serial))
		}
		if (r.label != "" && label != r.label) ||
			(r.serial != "" && serial != r.serial) ||
			(r.manufacturer != "" && strings.TrimRight(info.ManufacturerID, " ") != r.manufacturer) ||
			(r.model != "" && strings.TrimRight(info.Model, " ") != r.model) {
			continue
		}
		matches = append(matches, s)
		infos = append(infos, info)
	}
	want := selector(r)
	switch len(matches) {
	case 0:
		sort.Strings(seen)
		avail := "none"
		if len(seen) > 0 {
			avail = strings.Join(seen, ", ")
		}
		return 0, pkcs11.TokenInfo{}, fmt.Errorf("%w: no token with %s in module %s (initialized tokens: %s); a token created after this process opened the module becomes visible only once every Token of the module is closed",
			ErrTokenNotFound, want, r.module, avail)
	case 1:
		return matches[0], infos[0], nil
	default:
		return 0, pkcs11.TokenInfo{}, fmt.Errorf("%w: %d tokens have %s in module %s; select the token by serial", ErrTokenAmbiguous, len(matches), want, r.module)
	}
}

func selector(r *resolved) string {
	var parts []string
	if r.label != "" {
		parts = append(parts, fmt.Sprintf("label %q", r.label))
	}
	if r.serial != "" {
		parts = append(parts, fmt.Sprintf("serial %q", r.serial))
	}
	if r.manufacturer != "" {
		parts = append(parts, fmt.Sprintf("manufacturer %q", r.manufacturer))
	}
	if r.model != "" {
		parts = append(parts, fmt.Sprintf("model %q", r.model))
	}
	return strings.Join(parts, " and ")
}

func (t *Token) describe() string {
	return fmt.Sprintf("token %q (serial %s)", t.label, t.serial)
}

// Label returns the token label.
func (t *Token) Label() string { return t.label }

// Serial returns the token serial number.
func (t *Token) Serial() string { return t.serial }

// ModulePath returns the PKCS#11 module path the token was opened with.
func (t *Token) ModulePath() string { return t.modulePath }

// URIObject returns the object= attribute of [Config.URI] (empty if none), so
// that a deployment can name its seal or identity key in the URI.
func (t *Token) URIObject() string { return t.object }

// String describes the token (never the PIN).
func (t *Token) String() string { return "hsmshare." + t.describe() }

// usedMechanisms are the mechanisms this package may use.
var usedMechanisms = []uint{
	pkcs11.CKM_AES_KEY_GEN, pkcs11.CKM_AES_GCM, pkcs11.CKM_AES_CBC_PAD,
	pkcs11.CKM_GENERIC_SECRET_KEY_GEN, pkcs11.CKM_SHA256_HMAC,
	pkcs11.CKM_EC_KEY_PAIR_GEN, pkcs11.CKM_ECDSA, pkcs11.CKM_ECDH1_DERIVE,
}

// readMechanisms asks the token (C_GetMechanismList, C_GetMechanismInfo)
// which of usedMechanisms it offers and with which flags.
func readMechanisms(p *pkcs11.Ctx, slot uint) (map[uint]uint, error) {
	list, err := p.GetMechanismList(slot)
	if err != nil {
		return nil, err
	}
	out := map[uint]uint{}
	for _, m := range list {
		if !slices.Contains(usedMechanisms, m.Mechanism) {
			continue
		}
		info, err := p.GetMechanismInfo(slot, []*pkcs11.Mechanism{pkcs11.NewMechanism(m.Mechanism, nil)})
		if err != nil {
			if ckrIs(err, pkcs11.CKR_MECHANISM_INVALID) {
				continue
			}
			return nil, err
		}
		out[m.Mechanism] = info.Flags
	}
	return out, nil
}

// requireMechanism returns a *MechanismError unless the token offers m with
// every flag in flags (CKF_ENCRYPT, CKF_SIGN, ...).
func (t *Token) requireMechanism(m, flags uint, purpose string) error {
	if got, ok := t.mechs[m]; ok && got&flags == flags {
		return nil
	}
	return &MechanismError{Mechanism: mechanismName(m), Token: t.label, Purpose: purpose}
}

// usable returns ErrClosed once Close has begun.
func (t *Token) usable() error {
	if t.closed.Load() {
		return fmt.Errorf("%w: %s", ErrClosed, t.describe())
	}
	return nil
}

// Close releases the token's sessions, logs out (when it is the last [Token]
// on this token in the process) and finalizes the module (when it is the
// last Token of the module). It waits for operations in flight. Keys,
// identities and stores obtained from the token must not be used
// afterwards; they return [ErrClosed]. Close is idempotent.
func (t *Token) Close() error {
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		var errs []error
		sh := t.pool.drain()
		if err := t.mod.logoutIfLast(t.slot, sh); err != nil {
			errs = append(errs, fmt.Errorf("hsmshare: log out of %s: %w", t.describe(), err))
		}
		if err := t.pool.closeSessions(); err != nil {
			errs = append(errs, fmt.Errorf("hsmshare: close sessions of %s: %w", t.describe(), err))
		}
		if err := t.mod.release(); err != nil {
			errs = append(errs, err)
		}
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}

// findObjects returns the handles of all objects matching tmpl.
func (t *Token) findObjects(sh pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := t.mod.ctx.FindObjectsInit(sh, tmpl); err != nil {
		return nil, err
	}
	var all []pkcs11.ObjectHandle
	for {
		hs, _, err := t.mod.ctx.FindObjects(sh, 16)
		if err != nil {
			_ = t.mod.ctx.FindObjectsFinal(sh)
			return nil, err
		}
		if len(hs) == 0 {
			break
		}
		all = append(all, hs...)
	}
	if err := t.mod.ctx.FindObjectsFinal(sh); err != nil {
		return nil, err
	}
	return all, nil
}
