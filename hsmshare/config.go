package hsmshare

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// DefaultSessions is the session pool size used when [Config.Sessions] is 0
// and the token allows at least that many read-write sessions per process
// (ulMaxRwSessionCount in its CK_TOKEN_INFO); a token that allows fewer
// gets a pool of the size it allows.
const DefaultSessions = 8

// maxSessions bounds Config.Sessions.
const maxSessions = 1024

// maxInitArgsLen bounds Config.ModuleInitArgs.
const maxInitArgsLen = 4096

// maxPINLen bounds a PIN read from a file or the environment (PKCS#11
// tokens commonly allow at most 255 bytes).
const maxPINLen = 255

// Config says which PKCS#11 module and token to open and where the user PIN
// comes from. The token can be given by ModulePath plus TokenLabel and/or
// TokenSerial, or by URI (see [ParseURI]); when both forms are used they
// must agree. [Open] checks it and refuses an invalid Config with
// [ErrInvalidConfig].
type Config struct {
	// ModulePath is the file path of the PKCS#11 module (shared library),
	// for example /usr/lib/softhsm/libsofthsm2.so.
	ModulePath string
	// ModuleInitArgs, when not empty, is passed to the module's
	// C_Initialize as CK_C_INITIALIZE_ARGS.pReserved, a NUL-terminated
	// string whose meaning the module defines. Most modules need none.
	// NSS's softoken (libsoftokn3.so) refuses to start without one naming
	// its database directory and token label:
	//
	//	configdir='sql:/var/lib/keyquorum/nssdb' certPrefix='' keyPrefix='' secmod='secmod.db' dbTokenDescription='site-a' flags=
	//
	// A module is initialized once per process: every Token open at the
	// same time on one module must use the same value. It holds paths, not
	// secrets, and appears in String. At most 4096 bytes, no NUL byte.
	ModuleInitArgs string
	// TokenLabel selects the token by its label. Labels are not unique;
	// if several tokens carry it, Open fails with ErrTokenAmbiguous.
	TokenLabel string
	// TokenSerial selects the token by its serial number.
	TokenSerial string
	// URI is an RFC 7512 "pkcs11:" URI (see ParseURI) that may give
	// token=, serial=, manufacturer=, model=, object=, module-path= and
	// pin-source=.
	URI string
	// PINSource says where the user PIN is read from: "file:PATH" (the
	// first line of the file; the file must not be readable by others) or
	// "env:VAR" (an environment variable).
	PINSource string
	// PIN is a literal user PIN. It is meant for tests only: a Go string
	// cannot be wiped, so production code should use PINSource.
	PIN string
	// Sessions is the size of the session pool, that is the number of
	// token operations that can run at once, at most 1024. 0 means
	// DefaultSessions, or fewer if the token reports that this process may
	// open fewer read-write sessions (ulMaxRwSessionCount and
	// ulMaxSessionCount in CK_TOKEN_INFO, less the sessions already open).
	// Open refuses a larger value than the token allows with
	// ErrInvalidConfig rather than fail on the session the token refuses.
	Sessions int
	// Scheme selects how new blobs are sealed. SchemeAuto (the zero value)
	// uses AES-GCM when the token offers CKM_AES_GCM and the CBC+HMAC
	// fallback otherwise; SchemeGCM requires GCM; SchemeCBCHMAC forces the
	// fallback. Blobs sealed under either scheme can always be opened.
	Scheme Scheme
	// Observe, when set, is called after every token operation of the
	// Token (see [Op]) with how long it took, waiting for a free session
	// included, and its error (nil on success). It is meant for metrics:
	// it runs on the caller's goroutine, must return quickly and must not
	// use the Token. It receives no key material.
	Observe func(op Op, d time.Duration, err error)
}

// String describes c with the PIN redacted.
func (c Config) String() string {
	pin := ""
	if c.PIN != "" {
		pin = "[redacted]"
	}
	uri := c.URI
	if strings.Contains(strings.ToLower(uri), "pin-value") {
		uri = "[redacted: contains pin-value]"
	}
	return fmt.Sprintf("hsmshare.Config{ModulePath:%q ModuleInitArgs:%q TokenLabel:%q TokenSerial:%q URI:%q PINSource:%q PIN:%q Sessions:%d Scheme:%v}",
		c.ModulePath, c.ModuleInitArgs, c.TokenLabel, c.TokenSerial, uri, c.PINSource, pin, c.Sessions, c.Scheme)
}

// GoString is like String, so that %#v does not print the PIN either.
func (c Config) GoString() string { return c.String() }

// resolved is a Config merged with its URI and checked.
type resolved struct {
	module       string
	initArgs     string
	label        string
	serial       string
	manufacturer string
	model        string
	object       string
	pinSource    string
	pinLiteral   string
	sessions     int // 0: sized by poolSize from the token's limits
	scheme       Scheme
	observe      func(Op, time.Duration, error)
}

// String keeps the PIN out of any accidental formatting.
func (r *resolved) String() string { return "hsmshare.resolved{[redacted]}" }

func (c Config) resolve() (*resolved, error) {
	r := &resolved{
		module:     c.ModulePath,
		initArgs:   c.ModuleInitArgs,
		label:      c.TokenLabel,
		serial:     c.TokenSerial,
		pinSource:  c.PINSource,
		pinLiteral: c.PIN,
		sessions:   c.Sessions,
		scheme:     c.Scheme,
		observe:    c.Observe,
	}
	if c.URI != "" {
		u, err := ParseURI(c.URI)
		if err != nil {
			return nil, err
		}
		merge := func(what string, dst *string, v string) error {
			if v == "" {
				return nil
			}
			if *dst != "" && *dst != v {
				return fmt.Errorf("%w: %s in the URI (%q) differs from the Config field (%q)", ErrInvalidConfig, what, v, *dst)
			}
			*dst = v
			return nil
		}
		for _, m := range []struct {
			what string
			dst  *string
			v    string
		}{
			{"module-path", &r.module, u.ModulePath},
			{"token", &r.label, u.Token},
			{"serial", &r.serial, u.Serial},
			{"pin-source", &r.pinSource, u.PINSource},
		} {
			if err := merge(m.what, m.dst, m.v); err != nil {
				return nil, err
			}
		}
		r.manufacturer, r.model, r.object = u.Manufacturer, u.Model, u.Object
	}
	switch {
	case r.module == "":
		return nil, fmt.Errorf("%w: no PKCS#11 module path (set Config.ModulePath or module-path= in the URI)", ErrInvalidConfig)
	case r.label == "" && r.serial == "":
		return nil, fmt.Errorf("%w: no token selected (set a token label or serial, or token=/serial= in the URI)", ErrInvalidConfig)
	case r.pinSource == "" && r.pinLiteral == "":
		return nil, fmt.Errorf("%w: no PIN source (set Config.PINSource to file:PATH or env:VAR, or pin-source= in the URI)", ErrInvalidConfig)
	case r.pinSource != "" && r.pinLiteral != "":
		return nil, fmt.Errorf("%w: both a PIN source and a literal PIN are set; use one", ErrInvalidConfig)
	case len(r.initArgs) > maxInitArgsLen:
		return nil, fmt.Errorf("%w: ModuleInitArgs is %d bytes, more than %d", ErrInvalidConfig, len(r.initArgs), maxInitArgsLen)
	case strings.IndexByte(r.initArgs, 0) >= 0:
		return nil, fmt.Errorf("%w: ModuleInitArgs contains a NUL byte", ErrInvalidConfig)
	case r.sessions < 0 || r.sessions > maxSessions:
		return nil, fmt.Errorf("%w: Sessions = %d, want 0 (the default) to %d", ErrInvalidConfig, r.sessions, maxSessions)
	case r.scheme > SchemeCBCHMAC:
		return nil, fmt.Errorf("%w: unknown Scheme %d", ErrInvalidConfig, r.scheme)
	}
	return r, nil
}

// readPIN returns the PIN bytes. The caller wipes them after use.
func (r *resolved) readPIN() ([]byte, error) {
	if r.pinLiteral != "" {
		return []byte(r.pinLiteral), nil
	}
	kind, arg, ok := strings.Cut(r.pinSource, ":")
	if !ok || arg == "" {
		return nil, fmt.Errorf("%w: PIN source %q is not file:PATH or env:VAR", ErrInvalidConfig, r.pinSource)
	}
	switch kind {
	case "env":
		v, ok := os.LookupEnv(arg)
		if !ok || v == "" {
			return nil, fmt.Errorf("%w: PIN environment variable %s is not set or empty", ErrInvalidConfig, arg)
		}
		if len(v) > maxPINLen {
			return nil, fmt.Errorf("%w: PIN in environment variable %s is longer than %d bytes", ErrInvalidConfig, arg, maxPINLen)
		}
		return []byte(v), nil
	case "file":
		// RFC 8089 allows file:///path as well as file:/path.
		path := arg
		if rest, ok := strings.CutPrefix(path, "//"); ok {
			if !strings.HasPrefix(rest, "/") {
				return nil, fmt.Errorf("%w: PIN source file URI with a host is not supported; use file:/path", ErrInvalidConfig)
			}
			path = rest
		}
		return readPINFile(path)
	default:
		return nil, fmt.Errorf("%w: PIN source kind %q is not supported (use file:PATH or env:VAR)", ErrInvalidConfig, kind)
	}
}

func readPINFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: open PIN file: %w", ErrInvalidConfig, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: stat PIN file %s: %w", ErrInvalidConfig, path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: PIN file %s is not a regular file", ErrInvalidConfig, path)
	}
	if st.Mode().Perm()&0o007 != 0 {
		return nil, fmt.Errorf("%w: PIN file %s is accessible by other users (mode %#o); run chmod o-rwx on it", ErrInvalidConfig, path, st.Mode().Perm())
	}
	buf := make([]byte, maxPINLen+3)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		wipe(buf)
		return nil, fmt.Errorf("%w: PIN file %s is empty or unreadable", ErrInvalidConfig, path)
	}
	line := buf[:n]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	} else if n == len(buf) {
		wipe(buf)
		return nil, fmt.Errorf("%w: PIN file %s: first line is longer than %d bytes", ErrInvalidConfig, path, maxPINLen)
	}
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) == 0 {
		wipe(buf)
		return nil, fmt.Errorf("%w: PIN file %s: first line is empty", ErrInvalidConfig, path)
	}
	pin := make([]byte, len(line))
	copy(pin, line)
	wipe(buf)
	return pin, nil
}
