package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyquorum/keyquorum"
)

// Limits of the metrics listener (the README's "Metrics and health" lists
// them).
const (
	metricsReadHeaderTimeout = 5 * time.Second
	metricsReadTimeout       = 10 * time.Second
	metricsWriteTimeout      = 30 * time.Second
	metricsIdleTimeout       = time.Minute
	metricsMaxInFlight       = 4
	metricsScrapeTimeout     = 20 * time.Second
	metricsCheckTimeout      = 10 * time.Second
	metricsShutdownGrace     = 2 * time.Second
)

// metricsAddr checks --metrics: host:port with an IP literal host. It
// reports whether the address is a loopback one.
func metricsAddr(addr string) (loopback bool, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("--metrics %q: %w (want IP:PORT, such as 127.0.0.1:9464)", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false, fmt.Errorf("--metrics %q: the host must be an IP address, such as 127.0.0.1 (host names are not accepted)", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return false, fmt.Errorf("--metrics %q: the port must be a number from 0 to 65535", addr)
	}
	return ip.IsLoopback(), nil
}

// metricsServer serves /metrics, /healthz and /readyz on a listener of its
// own, apart from the control API: it needs no credentials and serves no
// secrets, but the metrics reveal the site's activity.
type metricsServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan error

	closeOnce sync.Once
	closeErr  error
}

// listenMetrics opens the metrics listener. It runs before the node opens,
// so that a port in use fails the start at once.
func listenMetrics(addr string, log *slog.Logger) (net.Listener, error) {
	loopback, err := metricsAddr(addr)
	if err != nil {
		return nil, usageErrorf("run: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener on %s: %w (choose another --metrics port)", addr, err)
	}
	if !loopback {
		log.Warn("the metrics endpoint listens beyond this machine: it reveals the site's activity (no secrets) to whoever reaches it; prefer a loopback address behind a scraper or a firewall",
			"metrics", ln.Addr().String())
	}
	return ln, nil
}

// newMetricsRegistry makes the registry the node registers its metrics in,
// with the Go runtime's and the process's.
func newMetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// serveMetrics serves the metrics endpoints on ln until close.
func serveMetrics(ln net.Listener, reg *prometheus.Registry, node *keyquorum.Node, ready keyquorum.ReadinessConfig, log *slog.Logger) *metricsServer {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: metricsMaxInFlight,
		Timeout:             metricsScrapeTimeout,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), metricsCheckTimeout)
		defer cancel()
		if _, err := node.Status(ctx); err != nil {
			writeHealth(w, http.StatusServiceUnavailable, map[string]any{"alive": false, "error": err.Error()})
			return
		}
		writeHealth(w, http.StatusOK, map[string]any{"alive": true})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), metricsCheckTimeout)
		defer cancel()
		rd, err := node.Readiness(ctx, ready)
		switch {
		case err != nil:
			writeHealth(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "error": err.Error()})
		case !rd.Ready:
			writeHealth(w, http.StatusServiceUnavailable, rd)
		default:
			writeHealth(w, http.StatusOK, rd)
		}
	})
	m := &metricsServer{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: metricsReadHeaderTimeout,
			ReadTimeout:       metricsReadTimeout,
			WriteTimeout:      metricsWriteTimeout,
			IdleTimeout:       metricsIdleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { m.done <- m.srv.Serve(ln) }()
	return m
}

func writeHealth(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// close stops the server, giving requests in flight a short grace, and
// waits for it. Calling it again returns the first result.
func (m *metricsServer) close() error {
	m.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), metricsShutdownGrace)
		defer cancel()
		if m.srv.Shutdown(ctx) != nil {
			m.srv.Close()
		}
		if err := <-m.done; !errors.Is(err, http.ErrServerClosed) {
			m.closeErr = fmt.Errorf("metrics endpoint stopped: %w", err)
		}
	})
	return m.closeErr
}
