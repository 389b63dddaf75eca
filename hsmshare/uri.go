package hsmshare

import (
	"fmt"
	"net/url"
	"strings"
)

// URI is the parsed form of an RFC 7512 "pkcs11:" URI, restricted to the
// attributes this package uses. Values are percent-decoded.
type URI struct {
	// Token is the token label (path attribute "token").
	Token string
	// Serial is the token serial number ("serial").
	Serial string
	// Manufacturer is the token manufacturer ID ("manufacturer").
	Manufacturer string
	// Model is the token model ("model").
	Model string
	// Object is an object label ("object"); callers use it as the seal or
	// identity key label.
	Object string
	// ID is an object's CKA_ID ("id"), raw bytes.
	ID []byte
	// Type is the object type ("type": private, public, secret-key, cert,
	// data), informational.
	Type string
	// ModulePath is the module to load (query attribute "module-path").
	ModulePath string
	// PINSource is where to read the PIN from (query attribute
	// "pin-source"): "file:PATH" or "env:VAR".
	PINSource string
}

// ParseURI parses an RFC 7512 PKCS#11 [URI] such as
//
//	pkcs11:token=site-a;object=seal?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/keyquorum/pin
//
// Attributes outside the supported set, repeated attributes and "pin-value"
// (a PIN written into the URI) are rejected with [ErrInvalidConfig]: an
// ignored attribute could otherwise select a different token than the one
// the operator meant.
func ParseURI(s string) (*URI, error) {
	const scheme = "pkcs11:"
	if len(s) < len(scheme) || !strings.EqualFold(s[:len(scheme)], scheme) {
		return nil, fmt.Errorf("%w: PKCS#11 URI must start with %q", ErrInvalidConfig, scheme)
	}
	rest := s[len(scheme):]
	path, query, _ := strings.Cut(rest, "?")
	if strings.Contains(path, "#") || strings.Contains(query, "#") {
		return nil, fmt.Errorf("%w: PKCS#11 URI must not contain a fragment", ErrInvalidConfig)
	}
	u := &URI{}
	seen := map[string]bool{}
	parse := func(part, sep string, isQuery bool) error {
		if part == "" {
			return nil
		}
		for i, attr := range strings.Split(part, sep) {
			name, raw, ok := strings.Cut(attr, "=")
			if !ok || name == "" {
				// Not echoed: a malformed attribute might be a PIN.
				return fmt.Errorf("%w: PKCS#11 URI attribute number %d is not name=value", ErrInvalidConfig, i+1)
			}
			if name == "pin-value" {
				return fmt.Errorf("%w: PKCS#11 URI must not carry the PIN (pin-value); store it in a file and use pin-source=file:PATH", ErrInvalidConfig)
			}
			if seen[name] {
				return fmt.Errorf("%w: PKCS#11 URI repeats attribute %q", ErrInvalidConfig, name)
			}
			seen[name] = true
			v, err := url.PathUnescape(raw)
			if err != nil {
				return fmt.Errorf("%w: PKCS#11 URI attribute %q: bad percent-encoding", ErrInvalidConfig, name)
			}
			if err := u.set(name, v, isQuery); err != nil {
				return err
			}
		}
		return nil
	}
	if err := parse(path, ";", false); err != nil {
		return nil, err
	}
	if err := parse(query, "&", true); err != nil {
		return nil, err
	}
	return u, nil
}

func (u *URI) set(name, v string, isQuery bool) error {
	if isQuery {
		switch name {
		case "module-path":
			u.ModulePath = v
		case "pin-source":
			u.PINSource = v
		default:
			return fmt.Errorf("%w: PKCS#11 URI query attribute %q is not supported (supported: module-path, pin-source)", ErrInvalidConfig, name)
		}
		return nil
	}
	switch name {
	case "token":
		u.Token = v
	case "serial":
		u.Serial = v
	case "manufacturer":
		u.Manufacturer = v
	case "model":
		u.Model = v
	case "object":
		u.Object = v
	case "id":
		u.ID = []byte(v)
	case "type":
		switch v {
		case "private", "public", "secret-key", "cert", "data":
		default:
			return fmt.Errorf("%w: PKCS#11 URI type=%q is not one of private, public, secret-key, cert, data", ErrInvalidConfig, v)
		}
		u.Type = v
	default:
		return fmt.Errorf("%w: PKCS#11 URI path attribute %q is not supported (supported: token, serial, manufacturer, model, object, id, type)", ErrInvalidConfig, name)
	}
	return nil
}
