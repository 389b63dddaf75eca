package hsmshare

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/miekg/pkcs11"
)

// sessionPool lends PKCS#11 sessions to goroutines, one at a time each.
//
// PKCS#11 forbids simultaneous calls on one session (v2.40 base
// specification, "Operations, sessions, and threads"); SoftHSM2 crashes the whole process
// (SIGSEGV in cgo) when two goroutines run operations on one session. Every
// token operation therefore borrows a session for its whole Init+operation
// sequence and gives it back afterwards.
type sessionPool struct {
	ctx  *pkcs11.Ctx
	all  []pkcs11.SessionHandle
	idle chan pkcs11.SessionHandle
	// observe, when set, is told of every operation run through do
	// (Config.Observe).
	observe func(Op, time.Duration, error)

	mu     sync.Mutex
	closed bool
	done   chan struct{}
}

// poolSize returns how many sessions to open on a token whose
// CK_TOKEN_INFO is info: requested (Config.Sessions) when it is not 0,
// DefaultSessions otherwise, never more than the token says this process
// may still open.
//
// PKCS#11 v2.40 §3.2 (CK_TOKEN_INFO): ulMaxRwSessionCount and
// ulMaxSessionCount are the read-write and all sessions a single
// application may have open at once, ulRwSessionCount and ulSessionCount
// how many it has open now (other Tokens of this process on the same
// token). A maximum of CK_EFFECTIVELY_INFINITE means no limit, and
// CK_UNAVAILABLE_INFORMATION in a maximum means none is known; in a count
// it means the count is unknown, and the whole maximum is assumed free.
// Every session of the pool is a read-write session, so both limits apply.
func poolSize(requested int, info pkcs11.TokenInfo) (int, error) {
	room, limit := uint(maxSessions), ""
	for _, l := range []struct {
		max, open uint
		name      string
	}{
		{info.MaxRwSessionCount, info.RwSessionCount, "read-write sessions (ulMaxRwSessionCount)"},
		{info.MaxSessionCount, info.SessionCount, "sessions (ulMaxSessionCount)"},
	} {
		if l.max == pkcs11.CK_EFFECTIVELY_INFINITE || l.max == pkcs11.CK_UNAVAILABLE_INFORMATION {
			continue
		}
		free, opened := l.max, "none known to be open"
		if l.open != pkcs11.CK_UNAVAILABLE_INFORMATION {
			free = l.max - min(l.open, l.max)
			opened = fmt.Sprintf("%d open", l.open)
		}
		if free < room {
			room = free
			limit = fmt.Sprintf("the token allows a process %d %s and this process has %s", l.max, l.name, opened)
		}
	}
	switch {
	case room == 0:
		return 0, fmt.Errorf("%w: %s, so no session is left for this Token; close another Token of this process on the same token, or open it with fewer Sessions",
			ErrInvalidConfig, limit)
	case requested == 0:
		return int(min(room, DefaultSessions)), nil
	case uint(requested) > room:
		return 0, fmt.Errorf("%w: Sessions = %d, but %s: set Sessions to at most %d, or to 0 to size the pool from the token",
			ErrInvalidConfig, requested, limit, room)
	default:
		return requested, nil
	}
}

func openSessionPool(ctx *pkcs11.Ctx, slot uint, n int) (*sessionPool, error) {
	p := &sessionPool{ctx: ctx, idle: make(chan pkcs11.SessionHandle, n), done: make(chan struct{})}
	for range n {
		sh, err := ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			p.closeSessions()
			return nil, err
		}
		p.all = append(p.all, sh)
		p.idle <- sh
	}
	return p, nil
}

// get borrows a session, waiting until one is free, ctx ends or the pool
// closes.
func (p *sessionPool) get(ctx context.Context) (pkcs11.SessionHandle, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	select {
	case sh := <-p.idle:
		p.mu.Lock()
		closed := p.closed
		p.mu.Unlock()
		if closed {
			p.idle <- sh // for close's drain
			return 0, ErrClosed
		}
		return sh, nil
	case <-p.done:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (p *sessionPool) put(sh pkcs11.SessionHandle) { p.idle <- sh }

// with runs f on a borrowed session.
func (p *sessionPool) with(ctx context.Context, f func(sh pkcs11.SessionHandle) error) error {
	sh, err := p.get(ctx)
	if err != nil {
		return err
	}
	defer p.put(sh)
	return f(sh)
}

// do runs f on a borrowed session as token operation op, and reports its
// duration (the wait for a session included) and outcome to the pool's
// observer.
func (p *sessionPool) do(ctx context.Context, op Op, f func(sh pkcs11.SessionHandle) error) error {
	if p.observe == nil {
		return p.with(ctx, f)
	}
	start := time.Now()
	err := p.with(ctx, f)
	p.observe(op, time.Since(start), err)
	return err
}

// drain marks the pool closed and waits until every session is back, so no
// operation is in flight afterwards. It returns one session for the caller's
// last calls (logout); closeSessions ends them all.
func (p *sessionPool) drain() pkcs11.SessionHandle {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return 0
	}
	p.closed = true
	close(p.done)
	p.mu.Unlock()
	var sh pkcs11.SessionHandle
	for range p.all {
		sh = <-p.idle
	}
	return sh
}

func (p *sessionPool) closeSessions() error {
	var first error
	for _, sh := range p.all {
		if err := p.ctx.CloseSession(sh); err != nil && first == nil {
			first = err
		}
	}
	p.all = nil
	return first
}
