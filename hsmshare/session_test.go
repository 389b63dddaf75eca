package hsmshare

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
)

// TestOpen_SessionPoolOnRealTokens opens tokens of every implementation
// with the default and with explicit pool sizes. Neither SoftHSM2 nor NSS
// softoken limits the sessions of a process: both report
// ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE, so the pool has
// DefaultSessions sessions by default and any configured size otherwise,
// also one above the default. NSS softoken counts the read-write sessions
// this process holds (ulRwSessionCount), which checks the pool against the
// token's own count; SoftHSM2 reports CK_UNAVAILABLE_INFORMATION there.
func TestOpen_SessionPoolOnRealTokens(t *testing.T) {
	forEachImpl(t, testOpenSessionPoolOnRealTokens)
}

func testOpenSessionPoolOnRealTokens(t *testing.T, im impl) {
	tok := im.newToken(t)
	for _, c := range []struct{ sessions, want int }{
		{0, DefaultSessions},
		{1, 1},
		{DefaultSessions + 4, DefaultSessions + 4},
	} {
		cfg := testConfig(tok)
		cfg.Sessions = c.sessions
		tk, err := Open(context.Background(), cfg)
		if err != nil {
			t.Fatalf("Open with Sessions = %d: %v", c.sessions, err)
		}
		info, err := tk.mod.ctx.GetTokenInfo(tk.slot)
		if err != nil {
			tk.Close()
			t.Fatal(err)
		}
		if info.MaxRwSessionCount != pkcs11.CK_EFFECTIVELY_INFINITE {
			tk.Close()
			t.Fatalf("%s reports ulMaxRwSessionCount %#x, not CK_EFFECTIVELY_INFINITE: extend this test with the limit it reports", im.name, info.MaxRwSessionCount)
		}
		if got := len(tk.pool.all); got != c.want {
			t.Errorf("Sessions = %d: pool has %d sessions, want %d", c.sessions, got, c.want)
		}
		switch im.name {
		case "SoftHSM2":
			if info.RwSessionCount != pkcs11.CK_UNAVAILABLE_INFORMATION {
				t.Errorf("SoftHSM2 now counts read-write sessions (%d): compare the count with the pool here", info.RwSessionCount)
			}
		default:
			if info.RwSessionCount != uint(c.want) {
				t.Errorf("Sessions = %d: the token counts %d read-write sessions of this process, want %d", c.sessions, info.RwSessionCount, c.want)
			}
		}
		if err := tk.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPoolSize_FollowsTheTokensLimits covers the limits no installed
// implementation reports (both report CK_EFFECTIVELY_INFINITE, see
// above): the CK_TOKEN_INFO values of a token that does, as Open would
// read them.
func TestPoolSize_FollowsTheTokensLimits(t *testing.T) {
	const (
		inf   = pkcs11.CK_EFFECTIVELY_INFINITE
		unav  = pkcs11.CK_UNAVAILABLE_INFORMATION
		dflt  = DefaultSessions
		large = DefaultSessions + 4
	)
	info := func(maxRw, rw, maxAll, all uint) pkcs11.TokenInfo {
		return pkcs11.TokenInfo{MaxRwSessionCount: maxRw, RwSessionCount: rw, MaxSessionCount: maxAll, SessionCount: all}
	}
	for _, c := range []struct {
		name      string
		requested int
		info      pkcs11.TokenInfo
		want      int
		wantErr   string // a part of the error; "" for none
	}{
		{"no limit: the default", 0, info(inf, unav, inf, unav), dflt, ""},
		{"no limit: as configured", large, info(inf, unav, inf, unav), large, ""},
		{"limit unknown: the default", 0, info(unav, unav, unav, unav), dflt, ""},
		{"limit unknown: as configured", large, info(unav, unav, unav, unav), large, ""},
		{"limit above the default", 0, info(100, 0, inf, unav), dflt, ""},
		{"limit below the default", 0, info(4, unav, inf, unav), 4, ""},
		{"limit less the open sessions", 0, info(4, 1, inf, unav), 3, ""},
		{"configured up to the limit", 3, info(4, 1, inf, unav), 3, ""},
		{"configured above the limit", 4, info(4, 1, inf, unav), 0, "Sessions = 4, but the token allows a process 4 read-write sessions (ulMaxRwSessionCount) and this process has 1 open: set Sessions to at most 3"},
		{"limit used up", 0, info(4, 4, inf, unav), 0, "allows a process 4 read-write sessions (ulMaxRwSessionCount) and this process has 4 open, so no session is left"},
		{"more open than the limit", 0, info(4, 6, inf, unav), 0, "no session is left"},
		{"all sessions limited", 0, info(inf, unav, 3, 1), 2, ""},
		{"the tighter limit wins", 0, info(10, 0, 5, 0), 5, ""},
		{"the tighter limit names itself", 6, info(10, 0, 5, 0), 0, "allows a process 5 sessions (ulMaxSessionCount)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := poolSize(c.requested, c.info)
			if c.wantErr == "" {
				if err != nil || got != c.want {
					t.Fatalf("poolSize(%d) = %d, %v; want %d", c.requested, got, err, c.want)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("poolSize(%d) = %d, %v; want ErrInvalidConfig saying %q", c.requested, got, err, c.wantErr)
			}
		})
	}
}
