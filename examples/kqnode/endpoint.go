package main

// The control API's transport: where it listens, who may connect, how many
// at once, and how a client knows it talks to its site before it sends a
// request.
//
// By default the API listens on the Unix socket DIR/api.sock: created
// under umask 0177 inside the 0700 home, and every connection's peer is
// checked with SO_PEERCRED: a process of another uid is disconnected before
// it can send a byte of HTTP. The client checks the server's uid the same
// way.
//
// With --api 127.0.0.1:PORT it listens on TCP on loopback, where any local
// user can connect and, after a crash, take the port. There it speaks TLS
// 1.3 with a key pair made at every start; api.json (0600, in the 0700
// home) holds the SHA-256 of the public key, and the client sends its
// request only on a connection whose server proved in
// the handshake that it holds that key (CertificateVerify).
//
// Either way at most apiLimits.Conns connections are served at once; more
// are answered "503 busy" and closed by a small second server, and beyond
// that closed at once. Every connection's reading, writing and idling is
// bounded in time (apiLimits), so that one that stalls gives its place
// back. Who may do what is decided per request, from the operator's
// signature (requestauth.go); the socket's peer check is a layer before it.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// apiLimits bound what the control API holds for its clients.
type apiLimits struct {
	// Conns is how many connections the API serves at once.
	Conns int
	// BusyConns is how many connections over Conns are answered "503
	// busy" at once; more are closed without an answer.
	BusyConns int
	// Busy bounds the whole life of a connection answered busy.
	Busy time.Duration
	// ReadHeader, Read and Idle bound reading a request's header, all of
	// a request (its body is at most maxRequestBody), and a kept-alive
	// connection waiting for its next request.
	ReadHeader, Read, Idle time.Duration
	// Write bounds writing an answer once it is ready (an operation
	// itself may take as long as its rounds need).
	Write time.Duration
}

// defaultAPILimits are kqnode's (the README's "kqnode run" lists them).
var defaultAPILimits = apiLimits{
	Conns:      32,
	BusyConns:  8,
	Busy:       2 * time.Second,
	ReadHeader: 10 * time.Second,
	Read:       time.Minute,
	Idle:       30 * time.Second,
	Write:      10 * time.Second,
}

const (
	maxHeaderBytes = 16 << 10
	// refusalLogInterval spaces the log lines about refused connections.
	refusalLogInterval = 10 * time.Second
)

// errServerNotAuthenticated means the client could not make sure that the
// server it reached is its site, and sent it nothing.
var errServerNotAuthenticated = errors.New("control API server not authenticated")

// notAuthenticatedError says why the client does not trust the server.
type notAuthenticatedError struct{ reason string }

func (e *notAuthenticatedError) Error() string {
	return errServerNotAuthenticated.Error() + ": " + e.reason
}

func (e *notAuthenticatedError) Unwrap() error { return errServerNotAuthenticated }

// errAPIInUse means another process already serves the home's API socket.
var errAPIInUse = errors.New("control API socket in use")

// tlsPin is the pin of a public key: "sha256//" and the base64 SHA-256 of
// its SubjectPublicKeyInfo, as curl's --pinnedpubkey writes it.
func tlsPin(spki []byte) string {
	sum := sha256.Sum256(spki)
	return "sha256//" + base64.StdEncoding.EncodeToString(sum[:])
}

// newAPIIdentity makes the TLS key pair and self-signed certificate of one
// run, and returns the server's TLS configuration and the key's pin.
func newAPIIdentity() (*tls.Config, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "kqnode control API"},
		NotBefore:    now.Add(-time.Hour),
		// Clients check the pinned key, not the dates; a key lives as
		// long as one run.
		NotAfter:    now.AddDate(10, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, "", err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, "", err
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
	}
	return cfg, tlsPin(cert.RawSubjectPublicKeyInfo), nil
}

// pinnedTLS is the client's TLS configuration for a server whose public
// key has the given pin. The certificate chain is not verified (it is
// self-signed); the key is, and TLS 1.3 makes the server prove it holds
// it (CertificateVerify) before the handshake completes and anything is
// sent.
func pinnedTLS(pin string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by the pin check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || tlsPin(cs.PeerCertificates[0].RawSubjectPublicKeyInfo) != pin {
				return &notAuthenticatedError{reason: "its TLS key is not the one in " + apiFile}
			}
			return nil
		},
	}
}

// listenAPI listens for the control API: on the home's Unix socket when
// addr is empty, else on the loopback TCP address addr with TLS. It
// returns the listener and the endpoint to write into api.json (without
// token, PID and peer ID).
func listenAPI(h home, addr string, lim apiLimits, log *slog.Logger) (*apiListener, apiInfo, error) {
	l := &apiListener{uid: -1, slots: make(chan struct{}, lim.Conns), log: log,
		refusals: rateLog{log: log, every: refusalLogInterval}}
	var info apiInfo
	if addr == "" {
		if !peerCredAvailable {
			return nil, info, errors.New("control API: the Unix socket's peer check (SO_PEERCRED) needs Linux; run with --api 127.0.0.1:0 for TCP with TLS")
		}
		path := h.path(apiSocket)
		ln, err := listenUnix(path)
		if err != nil {
			return nil, info, err
		}
		l.Listener, l.uid = ln, os.Geteuid()
		info = apiInfo{Network: "unix", Addr: path}
	} else {
		cfg, pin, err := newAPIIdentity()
		if err != nil {
			return nil, info, fmt.Errorf("control API TLS key: %w", err)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, info, fmt.Errorf("control API: %w", err)
		}
		l.Listener, l.tls = ln, cfg
		info = apiInfo{Network: "tcp", Addr: ln.Addr().String(), TLSPin: pin}
	}
	l.busy = &connQueue{addr: l.Listener.Addr(), conns: make(chan net.Conn, lim.BusyConns),
		slots: make(chan struct{}, lim.BusyConns), timeout: lim.Busy, done: make(chan struct{})}
	return l, info, nil
}

// endpointString is how status and the ready line show an endpoint.
func endpointString(a apiInfo) string {
	if a.Network == "unix" {
		return "unix:" + a.Addr
	}
	return "https://" + a.Addr
}

// apiListener hands the API server the connections it may serve: only
// from kqnode's own uid on a Unix socket, at most apiLimits.Conns at once,
// and wrapped in TLS on TCP. The others are refused in Accept.
type apiListener struct {
	net.Listener
	uid      int         // the only peer uid served on a Unix socket; -1 on TCP
	tls      *tls.Config // the server's TLS configuration on TCP
	slots    chan struct{}
	busy     *connQueue
	log      *slog.Logger
	refusals rateLog
}

// Accept returns the next connection to serve.
func (l *apiListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.uid >= 0 {
			uid, pid, err := peerCred(c)
			if err != nil || uid != l.uid {
				c.Close()
				l.refusals.warn("control API: refused a connection from another user", "uid", uid, "pid", pid, "want_uid", l.uid, "err", err)
				continue
			}
		}
		select {
		case l.slots <- struct{}{}:
			// The slot wraps the TLS connection, so that it is given back
			// before the close_notify alert tells the client the connection
			// is over.
			if l.tls != nil {
				c = tls.Server(c, l.tls)
			}
			return &slotConn{Conn: c, slots: l.slots}, nil
		default:
			l.refusals.warn("control API: connection answered busy", "limit", cap(l.slots))
			l.busy.offer(c, l.tls)
		}
	}
}

// slotConn gives its slot back when it is closed.
type slotConn struct {
	net.Conn
	slots chan struct{}
	once  sync.Once
}

func (c *slotConn) Close() error {
	c.once.Do(func() { <-c.slots })
	return c.Conn.Close()
}

// connQueue is the listener of the busy server: connections over the
// limit, at most apiLimits.BusyConns at once.
type connQueue struct {
	addr    net.Addr
	conns   chan net.Conn
	slots   chan struct{}
	timeout time.Duration
	done    chan struct{}
	once    sync.Once
}

// offer queues c for a busy answer, or closes it when too many wait.
func (q *connQueue) offer(c net.Conn, cfg *tls.Config) {
	select {
	case q.slots <- struct{}{}:
	default:
		c.Close()
		return
	}
	c.SetDeadline(time.Now().Add(q.timeout))
	if cfg != nil {
		c = tls.Server(c, cfg)
	}
	c = &slotConn{Conn: c, slots: q.slots}
	select {
	case q.conns <- c: // never blocks: as many places as slots
	case <-q.done:
		c.Close()
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() {
		close(q.done)
		for {
			select {
			case c := <-q.conns:
				c.Close()
			default:
				return
			}
		}
	})
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }

// rateLog logs a warning at most once per interval, with how many were
// left out since the last one.
type rateLog struct {
	log     *slog.Logger
	every   time.Duration
	mu      sync.Mutex
	last    time.Time
	skipped int
}

func (r *rateLog) warn(msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < r.every {
		r.skipped++
		r.mu.Unlock()
		return
	}
	skipped := r.skipped
	r.last, r.skipped = now, 0
	r.mu.Unlock()
	if skipped > 0 {
		args = append(args, "similar_not_logged", skipped)
	}
	r.log.Warn(msg, args...)
}

// apiServer is the control API's HTTP server and the server that answers
// the connections over the limit.
type apiServer struct {
	srv  *http.Server
	busy *http.Server
	ln   *apiListener
}

// newAPIServer serves h on ln within lim (h itself bounds the writing of
// its answers to lim.Write, see statusWriter).
func newAPIServer(h http.Handler, ln *apiListener, lim apiLimits, errorLog *slog.Logger) *apiServer {
	logger := slog.NewLogLogger(errorLog.Handler(), slog.LevelWarn)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeader,
		ReadTimeout:       lim.Read,
		IdleTimeout:       lim.Idle,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          logger,
	}
	busy := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusServiceUnavailable, errorBody{Code: codeBusy,
				Error: fmt.Sprintf("the control API serves %d connections at once and all are in use: try again later", lim.Conns)})
		}),
		ReadHeaderTimeout: lim.Busy,
		ReadTimeout:       lim.Busy,
		WriteTimeout:      lim.Busy,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          logger,
	}
	busy.SetKeepAlivesEnabled(false)
	return &apiServer{srv: srv, busy: busy, ln: ln}
}

// shutdownGrace is how long in-flight API calls may finish after a stop
// signal before the node cancels them.
const shutdownGrace = 5 * time.Second

// serve answers API requests until ctx is done, then stops accepting
// requests and gives in-flight ones shutdownGrace; the caller closes the
// node afterwards, which ends whatever still runs.
func (a *apiServer) serve(ctx context.Context) error {
	errc := make(chan error, 1)
	busyDone := make(chan struct{})
	go func() { errc <- a.srv.Serve(a.ln) }()
	go func() { defer close(busyDone); a.busy.Serve(a.ln.busy) }()
	var err error
	select {
	case err = <-errc:
		err = fmt.Errorf("control API stopped: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if a.srv.Shutdown(sctx) != nil {
		a.srv.Close()
	}
	if a.busy.Shutdown(sctx) != nil {
		a.busy.Close()
	}
	<-busyDone
	if err != nil {
		return err
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return nil
}
