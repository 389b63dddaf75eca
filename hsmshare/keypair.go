package hsmshare

import (
	"context"
	"fmt"
	"sync"

	"github.com/miekg/pkcs11"
)

// keyPair is what the token's key pairs (Identity, ECDHKey) share: the two
// objects, their label and CKA_ID, and whether Destroy removed them.
type keyPair struct {
	tok   *Token
	kind  string // what the pair is, in errors: "identity", "HPKE key"
	label string
	id    []byte
	priv  pkcs11.ObjectHandle
	pubH  pkcs11.ObjectHandle

	mu        sync.Mutex
	destroyed bool
}

// attributes reads the private key's attributes back from the token.
func (k *keyPair) attributes(ctx context.Context) (KeyAttributes, error) {
	if err := k.usable(); err != nil {
		return KeyAttributes{}, err
	}
	var a KeyAttributes
	err := k.tok.pool.do(ctx, OpReadAttributes, func(sh pkcs11.SessionHandle) error {
		var err error
		a, err = k.tok.readKeyAttributes(sh, k.priv)
		return err
	})
	return a, err
}

// usable reports whether the token is open and the pair not destroyed.
func (k *keyPair) usable() error {
	if err := k.tok.usable(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.destroyed {
		return fmt.Errorf("%w: %s %q was destroyed", ErrClosed, k.kind, k.label)
	}
	return nil
}

// destroy deletes both halves of the pair from the token, once.
func (k *keyPair) destroy(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.destroyed {
		return nil
	}
	err := k.tok.pool.do(ctx, OpDestroyKey, func(sh pkcs11.SessionHandle) error {
		return k.tok.destroyObjects(sh, k.priv, k.pubH)
	})
	if err != nil {
		return fmt.Errorf("hsmshare: destroy %s %q: %w", k.kind, k.label, err)
	}
	k.destroyed = true
	return nil
}
