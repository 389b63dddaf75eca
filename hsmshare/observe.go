package hsmshare

import (
	"context"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Op names a kind of token operation, as reported to [Config.Observe].
type Op string

// Token operations reported to Config.Observe.
const (
	// OpSeal encrypts a blob under the seal key (and MACs it, in the
	// CBC+HMAC scheme).
	OpSeal Op = "seal"
	// OpUnseal checks and decrypts a blob.
	OpUnseal Op = "unseal"
	// OpSign signs a digest with the identity key.
	OpSign Op = "sign"
	// OpFindKey looks a key up by label and checks its attributes.
	OpFindKey Op = "find_key"
	// OpCreateKey generates a key in the token.
	OpCreateKey Op = "create_key"
	// OpReadAttributes reads a key's attributes.
	OpReadAttributes Op = "read_attributes"
	// OpDestroyKey destroys a key.
	OpDestroyKey Op = "destroy_key"
	// OpLedgerCreate creates a usage ledger.
	OpLedgerCreate Op = "ledger_create"
	// OpLedgerFind looks a ledger up by name.
	OpLedgerFind Op = "ledger_find"
	// OpLedgerList lists ledgers.
	OpLedgerList Op = "ledger_list"
	// OpLedgerRead reads which slots of a ledger are used.
	OpLedgerRead Op = "ledger_read"
	// OpLedgerMark marks ledger slots used.
	OpLedgerMark Op = "ledger_mark"
	// OpLedgerDestroy destroys a ledger.
	OpLedgerDestroy Op = "ledger_destroy"
	// OpCheck is Token.Check.
	OpCheck Op = "check"
	// OpDerive is a key agreement (CKM_ECDH1_DERIVE) with the HPKE key.
	OpDerive Op = "derive"
)

// ErrNotLoggedIn means the token's sessions are no longer logged in as the
// user: the token was logged out, removed or reset underneath the process.
// Restart the site (or re-open the Token) to log in again.
var ErrNotLoggedIn = errors.New("hsmshare: token session is not logged in")

// Check asks the token for the state of one of its sessions
// (C_GetSessionInfo) and reports an error unless it is logged in as the
// user with read-write access: ErrClosed after Close, ErrNotLoggedIn when
// the login is gone, or the token's own error (a removed device, an
// invalidated session). It is cheap and meant for health checks.
func (t *Token) Check(ctx context.Context) error {
	if err := t.usable(); err != nil {
		return err
	}
	return t.pool.do(ctx, OpCheck, func(sh pkcs11.SessionHandle) error {
		info, err := t.mod.ctx.GetSessionInfo(sh)
		if err != nil {
			return fmt.Errorf("hsmshare: session state of %s: %w", t.describe(), err)
		}
		if info.State != pkcs11.CKS_RW_USER_FUNCTIONS {
			return fmt.Errorf("%w: %s reports session state %d, not read-write user (%d); restart the site to log in again",
				ErrNotLoggedIn, t.describe(), info.State, pkcs11.CKS_RW_USER_FUNCTIONS)
		}
		return nil
	})
}
