package hsmshare

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"github.com/miekg/pkcs11"
)

// A PKCS#11 library is process-global: C_Initialize may be called once per
// process, C_Finalize ends it for every caller, and login state belongs to
// the process and token, not to a session (PKCS#11 v2.40 base specification,
// C_Initialize, C_Finalize and C_Login: a login applies to every session of
// the application on that token). This registry
// is therefore the one piece of package-level state: it shares one
// *pkcs11.Ctx per module file among all Tokens, counts its users, finalizes
// it when the last Token closes, and tracks the login of each slot so that
// a second Token on the same slot neither logs in twice nor logs the first
// one out.
var registry = struct {
	mu      sync.Mutex
	modules map[string]*module
}{modules: map[string]*module{}}

type module struct {
	path string // canonical path, registry key
	ctx  *pkcs11.Ctx
	// calls makes the C_Encrypt/C_Decrypt calls miekg/pkcs11 cannot size.
	calls *functionList
	// initArgs is the Config.ModuleInitArgs the library was initialized
	// with while users > 0, and cInitArgs its C copy (nil when empty),
	// kept until C_Finalize.
	initArgs  string
	cInitArgs unsafe.Pointer
	// users counts open Tokens; the library is initialized iff users > 0.
	users int
	// ownsInit is false when someone else in the process had already
	// initialized the library; then it is not finalized by us either.
	ownsInit bool
	slots    map[uint]*slotLogin
	// keyUsers counts open Stores per seal key ("<slot>/<key ID>"), so that
	// a key cannot be destroyed through any SealKey value while a Store
	// uses it.
	keyUsers map[string]int
	// pinKey keys the PIN fingerprints in slotLogin.
	pinKey [32]byte
}

// slotLogin is the shared login state of one token in this process.
type slotLogin struct {
	users int
	// pinMAC is HMAC(pinKey, PIN) of the PIN that logged in, so that a
	// second Open of the same token with a wrong PIN is refused even though
	// the token itself answers CKR_USER_ALREADY_LOGGED_IN.
	pinMAC []byte
	// loggedIn is true when this package performed the login (and so must
	// log out when the last Token on the slot closes).
	loggedIn bool
}

// canonicalModulePath resolves symlinks so that two spellings of one library
// (for example /usr/lib/softhsm/libsofthsm2.so and its target) share one
// entry: dlopen returns the same handle for both.
func canonicalModulePath(p string) (string, error) {
	if !strings.ContainsRune(p, os.PathSeparator) {
		// A bare file name is resolved by the dynamic loader's search path.
		return p, nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%w: module path %s: %w", ErrModuleNotFound, p, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w (check Config.ModulePath / module-path=)", ErrModuleNotFound, p, err)
	}
	return real, nil
}

// acquireModule loads and initializes the module at path (once per
// process) with the initialization arguments initArgs and registers one
// more user. While the module is in use, every user must give the same
// initArgs: the library reads them only at C_Initialize.
func acquireModule(path, initArgs string) (*module, error) {
	key, err := canonicalModulePath(path)
	if err != nil {
		return nil, err
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	m := registry.modules[key]
	if m == nil {
		ctx := pkcs11.New(key)
		if ctx == nil {
			return nil, fmt.Errorf("%w: cannot load %s as a PKCS#11 library (dlopen or C_GetFunctionList failed; check the path and the architecture)", ErrModuleNotFound, path)
		}
		calls, err := loadFunctionList(key)
		if err != nil {
			return nil, err
		}
		// The library stays loaded for the life of the process (it is
		// never dlclose'd): unloading libraries that register process-exit
		// handlers, as OpenSSL-based modules do, can crash at exit.
		m = &module{path: key, ctx: ctx, calls: calls}
		registry.modules[key] = m
	}
	if m.users > 0 && m.initArgs != initArgs {
		return nil, fmt.Errorf("%w: PKCS#11 module %s is already initialized in this process with other initialization arguments; a library is initialized once per process, so close every Token of it before opening it with new ones", ErrInvalidConfig, path)
	}
	if m.users == 0 {
		var opts []pkcs11.InitializeOption
		var cArgs unsafe.Pointer
		if initArgs != "" {
			// CK_C_INITIALIZE_ARGS.pReserved: a NUL-terminated string the
			// module interprets (NSS softoken reads its database
			// directory from it). C memory, so the module may keep
			// pointing at it until C_Finalize.
			cArgs = cString(initArgs)
			opts = append(opts, pkcs11.InitializeWithReserved(cArgs))
		}
		switch err := m.ctx.Initialize(opts...); {
		case err == nil:
			m.ownsInit = true
		case ckrIs(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED):
			// Initialized by someone else in the process, with arguments
			// we cannot know; it did not read ours.
			m.ownsInit = false
			if cArgs != nil {
				freeCString(cArgs)
				cArgs = nil
			}
		default:
			if cArgs != nil {
				freeCString(cArgs)
			}
			return nil, fmt.Errorf("hsmshare: initialize PKCS#11 module %s: %w (%s)", path, err, initHint(initArgs, err))
		}
		m.initArgs, m.cInitArgs = initArgs, cArgs
		m.slots = map[uint]*slotLogin{}
		m.keyUsers = map[string]int{}
		rand.Read(m.pinKey[:]) // never fails since Go 1.24
	}
	m.users++
	return m, nil
}

// initHint says what to check when C_Initialize fails.
func initHint(initArgs string, err error) string {
	switch {
	case initArgs == "" && ckrIs(err, pkcs11.CKR_ARGUMENTS_BAD):
		return "the module may need initialization arguments: set Config.ModuleInitArgs (kqnode init --module-init-args); NSS softoken needs configdir='sql:DIR' certPrefix='' keyPrefix='' secmod='secmod.db' dbTokenDescription='LABEL' flags="
	case initArgs != "":
		return "check Config.ModuleInitArgs: for NSS softoken, that the database directory exists and was created with certutil -N"
	default:
		return "for SoftHSM2 check SOFTHSM2_CONF and that its token directory exists"
	}
}

// releaseModule drops one user; the last one finalizes the library.
func (m *module) release() error {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	m.users--
	if m.users > 0 {
		return nil
	}
	clear(m.pinKey[:])
	m.slots = nil
	m.keyUsers = nil
	m.initArgs = ""
	if !m.ownsInit {
		return nil
	}
	if err := m.ctx.Finalize(); err != nil {
		// The library may still be initialized and hold on to the
		// arguments: they are not freed.
		return fmt.Errorf("hsmshare: finalize PKCS#11 module %s: %w", m.path, err)
	}
	if m.cInitArgs != nil {
		freeCString(m.cInitArgs)
		m.cInitArgs = nil
	}
	return nil
}

// login logs the user into slot through session sh unless this process is
// already logged in there, in which case pin must match the PIN that did.
func (m *module) login(slot uint, sh pkcs11.SessionHandle, pin []byte) error {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	mac := hmac.New(sha256.New, m.pinKey[:])
	mac.Write(pin)
	sum := mac.Sum(nil)
	if s := m.slots[slot]; s != nil && s.users > 0 {
		if !hmac.Equal(s.pinMAC, sum) {
			return ErrWrongPIN
		}
		s.users++
		return nil
	}
	s := &slotLogin{users: 1, pinMAC: sum}
	// miekg/pkcs11 takes the PIN as a string; it copies it into C memory
	// for the call. Viewing our byte slice as a string (no copy) lets the
	// caller wipe the only Go copy afterwards.
	err := m.ctx.Login(sh, pkcs11.CKU_USER, unsafeString(pin))
	switch {
	case err == nil:
		s.loggedIn = true
	case ckrIs(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN):
		// Logged in by another user of the library in this process.
		s.loggedIn = false
	default:
		return err
	}
	m.slots[slot] = s
	return nil
}

// logoutIfLast drops one user of slot's login; the last one logs out
// through sh (which must still be open).
func (m *module) logoutIfLast(slot uint, sh pkcs11.SessionHandle) error {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	s := m.slots[slot]
	if s == nil {
		return nil
	}
	s.users--
	if s.users > 0 {
		return nil
	}
	delete(m.slots, slot)
	if !s.loggedIn {
		return nil
	}
	if err := m.ctx.Logout(sh); err != nil && !ckrIs(err, pkcs11.CKR_USER_NOT_LOGGED_IN) {
		return err
	}
	return nil
}

// keyUse adds delta to the Store count of key keyID in slot and returns the
// new count.
func (m *module) keyUse(slot uint, keyID string, delta int) int {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if m.keyUsers == nil {
		m.keyUsers = map[string]int{}
	}
	k := fmt.Sprintf("%d/%s", slot, keyID)
	n := m.keyUsers[k] + delta
	if n <= 0 {
		delete(m.keyUsers, k)
		return 0
	}
	m.keyUsers[k] = n
	return n
}
