package hsmshare

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
)

type observed struct {
	op  Op
	err error
}

func TestObserve_ReportsEveryTokenOperation(t *testing.T) {
	tok := softHSMTokens(t, 1)[0]
	var mu sync.Mutex
	var got []observed
	tk := openToken(t, tok, func(c *Config) {
		c.Observe = func(op Op, d time.Duration, err error) {
			if d < 0 {
				t.Errorf("%s reported a negative duration %v", op, d)
			}
			mu.Lock()
			got = append(got, observed{op, err})
			mu.Unlock()
		}
	})
	ctx := context.Background()
	k, err := tk.CreateSealKey(ctx, "seal")
	if err != nil {
		t.Fatal(err)
	}
	hdr := Header{Kind: "k", KeyID: "i", PartyID: "p", Version: 1}
	blob, err := k.Seal(ctx, hdr, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Open(ctx, blob, hdr); err != nil {
		t.Fatal(err)
	}
	blob[len(blob)-1] ^= 1
	if _, err := k.Open(ctx, blob, hdr); !errors.Is(err, ErrTampered) {
		t.Fatalf("Open of a tampered blob: %v, want ErrTampered", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []struct {
		op     Op
		failed bool
	}{{OpCreateKey, false}, {OpSeal, false}, {OpUnseal, false}, {OpUnseal, true}}
	if len(got) != len(want) {
		t.Fatalf("observed %v, want %v", got, want)
	}
	for i, w := range want {
		if got[i].op != w.op || (got[i].err != nil) != w.failed {
			t.Errorf("operation %d: observed %s (err %v), want %s failed=%v", i, got[i].op, got[i].err, w.op, w.failed)
		}
	}
}

func TestCheck_ReportsLostLogin(t *testing.T) {
	tok := softHSMTokens(t, 1)[0]
	ctx := context.Background()
	tk, err := Open(ctx, testConfig(tok))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tk.Close() })
	if err := tk.Check(ctx); err != nil {
		t.Fatalf("Check of a logged-in token: %v", err)
	}
	// Log the process out underneath the Token, as a token reset would.
	if err := tk.pool.with(ctx, func(sh pkcs11.SessionHandle) error { return tk.mod.ctx.Logout(sh) }); err != nil {
		t.Fatal(err)
	}
	if err := tk.Check(ctx); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("Check after logout: %v, want ErrNotLoggedIn", err)
	}
	if err := tk.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tk.Check(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Check after Close: %v, want ErrClosed", err)
	}
}
