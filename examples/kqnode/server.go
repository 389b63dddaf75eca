package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// server answers the control API for one Node.
type server struct {
	node *keyquorum.Node
	log  *slog.Logger
	// auth checks every request's operator signature; operators are the
	// site's operators (operators.go).
	auth      *authenticator
	operators *operatorSet
	home      string
	api       string
	warnings  []string
	// names are the sites' names from the peer file, by peer ID.
	names map[string]string
	// writeTimeout bounds writing an answer once it is ready (0: none).
	writeTimeout time.Duration
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range []struct {
		method, path string
		h            http.HandlerFunc
	}{
		{http.MethodGet, pathStatus, s.status},
		{http.MethodPost, pathKeygen, s.keygen},
		{http.MethodPost, pathPresign, s.presign},
		{http.MethodPost, pathSign, s.sign},
		{http.MethodPost, pathSignPSBT, s.signPSBT},
		{http.MethodPost, pathSignEth, s.signEth},
		{http.MethodPost, pathPlan, s.plan},
		{http.MethodPost, pathKeyLabel, s.keyLabel},
		{http.MethodPost, pathReshare, s.reshare},
		{http.MethodPost, pathReshareAccept, s.reshareAccept},
		{http.MethodPost, pathRotateSealKey, s.rotateSealKey},
		{http.MethodPost, pathPreParamsGen, s.generatePreParams},
		{http.MethodPost, pathPoolTarget, s.poolTarget},
		{http.MethodPost, pathPoolDrain, s.poolDrain},
		{http.MethodPost, pathBackup, s.backup},
		{http.MethodPost, pathRequests, s.requestCreate},
		{http.MethodPost, pathRequestsApprove, s.requestApprove},
		{http.MethodGet, pathOperators, s.operatorsList},
		{http.MethodPost, pathOperators, s.operatorsAdd},
		{http.MethodPost, pathOperatorsRemove, s.operatorsRemove},
		{http.MethodGet, pathAuditEntry, s.auditEntry},
		{http.MethodPost, pathOfflineExport, s.offlineExport},
		{http.MethodPost, pathOfflineImport, s.offlineImport},
		{http.MethodPost, pathOfflineInspect, s.offlineInspect},
		{http.MethodPost, pathOfflineSkip, s.offlineSkip},
	} {
		mux.HandleFunc(r.method+" "+r.path, r.h)
		// Any other method on a known path: 405 with the JSON error body.
		if r.path == pathOperators && r.method == http.MethodPost {
			continue // GET and POST both serve it
		}
		mux.HandleFunc(r.path, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Allow", r.method)
			writeError(w, http.StatusMethodNotAllowed, errorBody{Code: codeBadRequest,
				Error: fmt.Sprintf("%s %s: method not allowed, use %s", req.Method, r.path, r.method)})
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusNotFound, errorBody{Code: codeNotFound,
			Error: fmt.Sprintf("no such endpoint %s: the API has %s",
				truncate(req.URL.Path, 100), strings.Join([]string{pathStatus, pathKeygen, pathPresign, pathSign, pathSignPSBT,
					pathSignEth, pathPlan, pathKeyLabel, pathReshare, pathReshareAccept, pathRotateSealKey, pathPreParamsGen,
					pathPoolTarget, pathPoolDrain, pathBackup, pathRequests, pathRequestsApprove, pathOperators, pathOperatorsRemove, pathAuditEntry,
					pathOfflineExport, pathOfflineImport, pathOfflineInspect, pathOfflineSkip}, ", "))})
	})
	return s.authenticate(mux)
}

// authenticate lets a request through only when it is signed by one of
// the site's operators (requestauth.go) whose roles allow its route
// (operators.go), and attributes it to that operator in the log and the
// audit log.
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &statusWriter{ResponseWriter: w, code: 200, writeTimeout: s.writeTimeout}
		body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxRequestBody))
		if err != nil {
			writeError(rw, http.StatusBadRequest, errorBody{Code: codeBadRequest,
				Error: fmt.Sprintf("request body: %v (at most %d bytes)", err, maxRequestBody)})
			return
		}
		op, err := s.auth.verify(r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get(headerTime), r.Header.Get(headerNonce), body)
		if err == nil {
			err = authorize(op, r.Method, r.URL.Path, s.home)
		}
		var ae *authError
		if errors.As(err, &ae) {
			status, code := http.StatusUnauthorized, codeUnauthenticated
			if errors.Is(err, errForbidden) {
				status, code = http.StatusForbidden, codeForbidden
			}
			s.log.Warn("API request refused", "code", code, "operator", ae.operator, "method", r.Method, "path", truncate(r.URL.Path, 200),
				"remote", r.RemoteAddr, "reason", ae.reason)
			writeError(rw, status, errorBody{Code: code, Error: ae.reason})
			s.audit(r, "api.refused", rw.code, ae.operator, code+": "+ae.reason)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r = r.WithContext(context.WithValue(r.Context(), operatorKey{}, op))
		next.ServeHTTP(rw, r)
		s.log.Info("API request", "operator", op.Name, "method", r.Method, "path", r.URL.Path, "status", rw.code,
			"took", time.Since(start).Round(time.Millisecond))
		if r.Method != http.MethodGet {
			s.audit(r, "api.call", rw.code, op.Name, "")
		}
	})
}

// operatorKey is the context key of the request's operator.
type operatorKey struct{}

// operatorOf returns the operator who signed r.
func operatorOf(r *http.Request) *operator {
	op, _ := r.Context().Value(operatorKey{}).(*operator)
	return op
}

// statusWriter records an answer's status, and gives the connection
// writeTimeout to write it from the moment it starts: a client that does
// not read its answer loses it and its connection.
type statusWriter struct {
	http.ResponseWriter
	code         int
	wrote        bool
	writeTimeout time.Duration
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote && w.writeTimeout > 0 {
		// Without a connection (tests' recorders) there is no deadline.
		_ = http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Now().Add(w.writeTimeout))
	}
	w.wrote = true
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// decode reads a JSON request body strictly: unknown fields, trailing data
// and oversized bodies are refused.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %w", errBadRequest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: request body has data after the JSON object", errBadRequest)
	}
	return nil
}

// writeJSON answers v. The answer must be written within
// responseWriteTimeout: a client that does not read it loses it.
// decodeWithKey is decode for a request that names a key: the key ID must
// be one keygen can have printed, 16 to 64 lowercase hex digits.
func decodeWithKey(w http.ResponseWriter, r *http.Request, v any, keyID *string) error {
	if err := decode(w, r, v); err != nil {
		return err
	}
	return checkKeyID(*keyID)
}

// Key IDs are lowercase hex, 16 to 64 digits (tss checks the same).
const (
	minKeyIDLen = 16
	maxKeyIDLen = 64
)

// checkKeyID refuses a key ID that cannot name a key, before it reaches
// the store (where it would be a file name).
func checkKeyID(id string) error {
	ok := len(id) >= minKeyIDLen && len(id) <= maxKeyIDLen
	for i := 0; ok && i < len(id); i++ {
		ok = ('0' <= id[i] && id[i] <= '9') || ('a' <= id[i] && id[i] <= 'f')
	}
	if !ok {
		return fmt.Errorf("%w: key_id %q is not a key ID: one is %d to %d lowercase hex digits, as keygen printed it", errBadRequest, truncate(id, 80), minKeyIDLen, maxKeyIDLen)
	}
	return nil
}

// truncate shortens s for a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, body errorBody) {
	writeJSON(w, code, body)
}

// fail answers err with its code, status and parties.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, status, parties := classify(err)
	s.log.Info("API request failed", "path", r.URL.Path, "code", code, "err", err.Error())
	writeError(w, status, errorBody{Error: err.Error(), Code: code, Parties: parties})
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.node.Status(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, statusResult{Status: st, Home: s.home, API: s.api, Warnings: s.warnings, Names: s.names})
}

func (s *server) keygen(w http.ResponseWriter, r *http.Request) {
	var req keygenRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	net, err := bitcoinNetwork(req.Network)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Label != "" {
		if err := keyquorum.ValidKeyLabel(req.Label); err != nil {
			s.fail(w, r, fmt.Errorf("%w: label: %w", errBadRequest, err))
			return
		}
	}
	info, err := s.node.Keygen(r.Context(), keyquorum.KeygenRequest{Parties: partyIDs(req.Parties), Threshold: req.Threshold})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Label != "" {
		if err := s.node.SetKeyLabel(r.Context(), info.ID, req.Label); err != nil {
			// The key exists on every site; only its name here is missing.
			s.fail(w, r, fmt.Errorf("key %s was generated on every site, but its label was not stored: set it with `kqnode keys label --key %s --label ...`: %w",
				info.ID, info.ID, err))
			return
		}
	}
	res, err := keygenOutput(info, net)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res.Label = req.Label
	writeJSON(w, 200, res)
}

// poolTarget sets the target of one of the site's own pools.
func (s *server) poolTarget(w http.ResponseWriter, r *http.Request) {
	var req poolTargetRequest
	if err := decodeWithKey(w, r, &req, &req.KeyID); err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.node.SetPoolTarget(r.Context(), keyquorum.PoolRequest{KeyID: req.KeyID, Signers: partyIDs(req.Signers), Path: req.Path}, req.Target)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, poolOutput(req.KeyID, p))
}

// poolDrain discards the ready presignatures of a pool.
func (s *server) poolDrain(w http.ResponseWriter, r *http.Request) {
	var req poolDrainRequest
	if err := decodeWithKey(w, r, &req, &req.KeyID); err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.node.DrainPool(r.Context(), keyquorum.PoolRequest{KeyID: req.KeyID, Signers: partyIDs(req.Signers), Path: req.Path,
		Initiator: tss.PartyID(req.Initiator)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res := poolOutput(req.KeyID, d.Pool)
	res.Drained = d.Discarded
	if d.Pool.Initiator == s.node.PartyID() {
		res.CoSigners = &d.CoSigners
		res.CoSignersError = d.CoSignersError
	}
	writeJSON(w, 200, res)
}

func poolOutput(keyID string, p keyquorum.PoolStatus) poolResult {
	return poolResult{KeyID: keyID, Signers: partyStrings(p.Signers), Path: p.Path, Initiator: string(p.Initiator),
		Target: p.Target, Ready: p.Ready, Reserved: p.Reserved, Making: p.Making}
}

// keyLabel sets or removes this site's label of a key.
func (s *server) keyLabel(w http.ResponseWriter, r *http.Request) {
	var req keyLabelRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := checkKeyID(req.KeyID); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.node.SetKeyLabel(r.Context(), req.KeyID, req.Label); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, req)
}

func keygenOutput(info *tss.KeyInfo, network string) (*keygenResult, error) {
	xpub, err := keyquorum.ExtendedPublicKey(info)
	if err != nil {
		return nil, err
	}
	params, err := wallet.Network(network)
	if err != nil {
		return nil, err
	}
	addr, err := wallet.BitcoinAddress(xpub.Key, wallet.P2WPKH, params)
	if err != nil {
		return nil, err
	}
	return &keygenResult{
		KeyID: info.ID, PublicKey: hex.EncodeToString(info.PublicKey), ChainCode: hex.EncodeToString(info.ChainCode),
		BTCAddress: addr.EncodeAddress(), ETHAddress: wallet.EthereumAddress(xpub.Key).Hex(),
		Threshold: info.Threshold, Parties: partyStrings(info.Parties), Network: network,
	}, nil
}

func bitcoinNetwork(name string) (string, error) {
	if name == "" {
		name = "regtest"
	}
	if _, err := wallet.Network(name); err != nil {
		return "", fmt.Errorf("%w: network %q: %w (want mainnet, testnet, regtest or signet)", errBadRequest, name, err)
	}
	return name, nil
}

func (s *server) presign(w http.ResponseWriter, r *http.Request) {
	var req presignRequest
	if err := decodeWithKey(w, r, &req, &req.KeyID); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Count < 1 || req.Count > 100000 {
		s.fail(w, r, fmt.Errorf("%w: count must be 1 to 100000, not %d", errBadRequest, req.Count))
		return
	}
	res, err := s.node.Presign(r.Context(), keyquorum.PresignRequest{KeyID: req.KeyID,
		Signers: partyIDs(req.Signers), Path: req.Path, Count: req.Count})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, presignResult{KeyID: req.KeyID, Signers: partyStrings(res.Pool.Signers), Path: res.Pool.Path, Initiator: string(res.Pool.Initiator),
		Made: res.Made, Ready: res.Pool.Ready, Reserved: res.Pool.Reserved})
}

// parseHex decodes lowercase or uppercase hex with an optional 0x prefix.
func parseHex(what, s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0x"), "0X")
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not hex: %w", errBadRequest, what, err)
	}
	return b, nil
}

func (o signOptions) parse() (keyquorum.SignOptions, error) {
	p, err := keyquorum.ParseProtocol(o.Protocol)
	if err != nil {
		return keyquorum.SignOptions{}, err
	}
	approvals, err := parseApprovals(o.Approvals)
	if err != nil {
		return keyquorum.SignOptions{}, err
	}
	return keyquorum.SignOptions{Signers: partyIDs(o.Signers), Protocol: p, Approvals: approvals}, nil
}

func parseApprovals(in []approvalJSON) ([]policy.Approval, error) {
	if len(in) > policy.MaxApprovals {
		return nil, fmt.Errorf("%w: %d approvals, at most %d", errBadRequest, len(in), policy.MaxApprovals)
	}
	out := make([]policy.Approval, 0, len(in))
	for _, a := range in {
		out = append(out, policy.Approval{Statement: []byte(a.Statement), Signature: []byte(a.Signature)})
	}
	return out, nil
}

// plan answers what an intent signs with a key, the statement approvers
// sign, and what this site's policy decides with the approvals given. It
// signs nothing and records nothing.
func (s *server) plan(w http.ResponseWriter, r *http.Request) {
	var req planRequest
	if err := decodeWithKey(w, r, &req, &req.KeyID); err != nil {
		s.fail(w, r, err)
		return
	}
	out, err := s.makePlan(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, out)
}

// makePlan evaluates req (its key ID checked by the caller).
func (s *server) makePlan(ctx context.Context, req planRequest) (*planResult, error) {
	raw, err := base64.StdEncoding.DecodeString(req.Intent)
	if err != nil {
		return nil, fmt.Errorf("%w: intent is not base64: %v", errBadRequest, err)
	}
	in, err := policy.ParseIntent(raw)
	if err != nil {
		return nil, err
	}
	if req.ExpiresIn < 0 || req.ExpiresIn > 366*24*3600 {
		return nil, fmt.Errorf("%w: expires_in %d seconds is outside 0 to one year", errBadRequest, req.ExpiresIn)
	}
	expires := 24 * time.Hour
	if req.ExpiresIn > 0 {
		expires = time.Duration(req.ExpiresIn) * time.Second
	}
	approvals, err := parseApprovals(req.Approvals)
	if err != nil {
		return nil, err
	}
	plan, d, err := s.node.Evaluate(ctx, keyquorum.PlanRequest{KeyID: req.KeyID, Intent: in}, approvals)
	if err != nil && plan == nil {
		return nil, err
	}
	out := &planResult{KeyID: req.KeyID, Kind: string(in.Kind()), IntentHash: hex.EncodeToString(plan.IntentHash[:]),
		SummaryHash: hex.EncodeToString(plan.SummaryHash[:]), Summary: json.RawMessage(plan.SummaryJSON), Digests: []string{},
		Statement: string(plan.Statement(time.Now().Add(expires)).Text())}
	for _, dg := range plan.Digests {
		out.Digests = append(out.Digests, hex.EncodeToString(dg.Digest[:]))
	}
	switch {
	case d != nil:
		out.Decision = decisionJSON{Allowed: d.Allowed, Rule: d.Rule, Counted: d.Counted, Approvers: d.Approvers, Reason: d.Reason}
		for _, q := range d.Required {
			out.Decision.Required = append(out.Decision.Required, q.String())
		}
		for _, rej := range d.Rejected {
			out.Decision.Rejected = append(out.Decision.Rejected, rej.Error())
		}
	case err != nil:
		out.Decision = decisionJSON{Reason: err.Error()}
	}
	return out, nil
}

func (s *server) sign(w http.ResponseWriter, r *http.Request) {
	var req signRequest
	if err := decodeWithKey(w, r, &req, &req.KeyID); err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := parseHex("digest", req.Digest)
	if err == nil && len(d) != 32 {
		err = fmt.Errorf("%w: digest must be 32 bytes (64 hex digits), not %d bytes", errBadRequest, len(d))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	opts, err := req.signOptions.parse()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sreq := keyquorum.SignRequest{KeyID: req.KeyID, Path: req.Path, SignOptions: opts}
	copy(sreq.Digest[:], d)
	sig, err := s.node.Sign(r.Context(), sreq)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	path := req.Path
	if path == "" {
		path = "m"
	}
	writeJSON(w, 200, signResult{
		R: hex.EncodeToString(sig.R[:]), S: hex.EncodeToString(sig.S[:]), V: int(sig.RecoveryID),
		DER: hex.EncodeToString(sig.DER()), PublicKey: hex.EncodeToString(sig.PublicKey),
		Digest: hex.EncodeToString(sig.Digest[:]), Path: path, Protocol: string(sig.Protocol),
		Signers: partyStrings(sig.Signers),
	})
}

func (s *server) signPSBT(w http.ResponseWriter, r *http.Request) {
	var req signPSBTRequest
	if err := decodeWithKey(w, r, &req, &req.KeyID); err != nil {
		s.fail(w, r, err)
		return
	}
	network, err := bitcoinNetwork(req.Network)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	params, _ := wallet.Network(network)
	raw := []byte(strings.TrimSpace(req.PSBT))
	if b, err := hex.DecodeString(string(raw)); err == nil && bytes.HasPrefix(b, []byte("psbt\xff")) {
		raw = b
	}
	packet, err := wallet.ParsePSBT(raw)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	paths := []hd.Path{{}}
	for _, p := range req.Paths {
		hp, err := hd.ParsePath(p)
		if err != nil {
			s.fail(w, r, fmt.Errorf("%w: path %q: %w", errBadRequest, p, err))
			return
		}
		paths = append(paths, hp)
	}
	opts, err := req.signOptions.parse()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.node.SignPSBT(r.Context(), keyquorum.PSBTRequest{KeyID: req.KeyID, Packet: packet,
		Options: wallet.PSBTOptions{Net: params, Paths: paths}, SignOptions: opts})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var buf bytes.Buffer
	if err := res.Packet.Serialize(&buf); err != nil {
		s.fail(w, r, fmt.Errorf("serialize the signed PSBT: %w", err))
		return
	}
	out := signPSBTResult{PSBT: base64.StdEncoding.EncodeToString(buf.Bytes()), Complete: res.Complete, SignedInputs: []int{}}
	for _, in := range res.Plan.Inputs {
		out.SignedInputs = append(out.SignedInputs, in.Index)
	}
	if res.Complete {
		out.TxHex = hex.EncodeToString(res.RawTx)
		out.TxID = res.Tx.TxHash().String()
		out.VSize, out.FeeRate = feeRate(res.Tx, res.Plan.Summary)
	}
	if out.Summary, err = res.Plan.Summary.JSON(); err != nil {
		s.fail(w, r, fmt.Errorf("encode the summary of the signed PSBT: %w", err))
		return
	}
	writeJSON(w, 200, out)
}

func (s *server) signEth(w http.ResponseWriter, r *http.Request) {
	var req signEthRequest
	if err := decodeWithKey(w, r, &req, &req.KeyID); err != nil {
		s.fail(w, r, err)
		return
	}
	raw, err := parseHex("tx", req.Tx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	tx, err := wallet.ParseEthereumTx(raw)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	chainID, ok := new(big.Int).SetString(req.ChainID, 10)
	if !ok || chainID.Sign() <= 0 {
		s.fail(w, r, fmt.Errorf("%w: chain ID %q is not a positive decimal number", errBadRequest, req.ChainID))
		return
	}
	opts, err := req.signOptions.parse()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.node.SignEthereumTx(r.Context(), keyquorum.EthereumTxRequest{KeyID: req.KeyID, Tx: tx,
		ChainID: chainID, Path: req.Path, SignOptions: opts})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	summary, err := res.Summary.JSON()
	if err != nil {
		s.fail(w, r, fmt.Errorf("encode the summary of the signed transaction: %w", err))
		return
	}
	writeJSON(w, 200, signEthResult{RawTx: hex.EncodeToString(res.Raw), Hash: hex.EncodeToString(res.Hash[:]), From: res.From.Hex(),
		Summary: summary})
}

// audit records an API call (every call but reads) or a refused one in the
// site's audit log, with the operator who signed it (empty when unknown),
// why it was refused, and where it came from: on the Unix socket only the
// site's own user can connect (checked at accept), on TCP the loopback
// address.
func (s *server) audit(r *http.Request, typ string, status int, operator, reason string) {
	if s.node == nil {
		return
	}
	remote := r.RemoteAddr
	if remote == "" || remote == "@" {
		remote = "unix socket (site user)"
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	defer cancel()
	detail := map[string]string{"method": r.Method, "path": truncate(r.URL.Path, 200),
		"status": strconv.Itoa(status), "remote": remote, "operator": operator}
	if reason != "" {
		detail["reason"] = truncate(reason, 300)
	}
	if err := s.node.RecordAudit(ctx, typ, detail); err != nil {
		s.log.Error("API call not recorded in the audit log", "path", r.URL.Path, "err", err.Error())
	}
}

func (s *server) reshare(w http.ResponseWriter, r *http.Request) {
	var req reshareRequest
	if err := decodeWithKey(w, r, &req, &req.KeyID); err != nil {
		s.fail(w, r, err)
		return
	}
	net, err := bitcoinNetwork(req.Network)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	info, err := s.node.Reshare(r.Context(), keyquorum.ReshareRequest{KeyID: req.KeyID, NewParties: partyIDs(req.Parties),
		NewThreshold: req.Threshold, OldParties: partyIDs(req.OldParties)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := keygenOutput(info, net)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, reshareResult{KeyID: res.KeyID, PublicKey: res.PublicKey, ChainCode: res.ChainCode, BTCAddress: res.BTCAddress,
		ETHAddress: res.ETHAddress, Threshold: res.Threshold, Parties: res.Parties, Network: res.Network, Epoch: info.Epoch})
}

func (s *server) reshareAccept(w http.ResponseWriter, r *http.Request) {
	var req reshareAcceptRequest
	if err := decodeWithKey(w, r, &req, &req.KeyID); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.ExpiresIn <= 0 || time.Duration(req.ExpiresIn)*time.Second > keyquorum.MaxReshareAuthorization {
		s.fail(w, r, fmt.Errorf("%w: expires_in %d seconds is outside 1 second to %s", errBadRequest, req.ExpiresIn, keyquorum.MaxReshareAuthorization))
		return
	}
	a := keyquorum.ReshareAuthorization{KeyID: req.KeyID, NewParties: partyIDs(req.Parties), NewThreshold: req.Threshold,
		Expires: time.Now().Add(time.Duration(req.ExpiresIn) * time.Second)}
	if err := s.node.AuthorizeReshare(r.Context(), a); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, reshareAcceptResult{KeyID: a.KeyID, Parties: partyStrings(tss.SortParties(a.NewParties)),
		Threshold: a.NewThreshold, Expires: a.Expires.UTC().Truncate(time.Second)})
}

func (s *server) rotateSealKey(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.node.RotateSealKey(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, res)
}

func (s *server) generatePreParams(w http.ResponseWriter, r *http.Request) {
	var req preParamsGenerateRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	made, err := s.node.GeneratePreParams(r.Context(), req.Count, nil)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := s.node.Status(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	pp := st.PreParams
	writeJSON(w, 200, preParamsResult{Ready: pp.Ready, Generating: pp.Generating, Target: pp.Target, Generated: pp.Generated,
		Generation: pp.Generation, Made: made, LastError: pp.LastError})
}

// auditEntry answers one entry of the site's audit log with its sealed
// detail part opened by the site's HSM-sealed data key. Opening a detail
// is recorded (api.detail-read, naming the operator and the entry) before
// the detail is answered.
func (s *server) auditEntry(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("seq")
	seq, err := strconv.ParseUint(q, 10, 64)
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: seq %q is not an entry's sequence number (0, 1, ... as audit tail shows them)", errBadRequest, truncate(q, 40)))
		return
	}
	e, d, err := s.node.AuditEntry(r.Context(), seq)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer clear(d)
	res := auditShowResult{Entry: json.RawMessage(e.JSON())}
	if d != nil {
		fields := map[string]string{"method": r.Method, "path": pathAuditEntry, "entry": strconv.FormatUint(seq, 10),
			"type": e.Type, "operator": operatorOf(r).Name}
		if err := s.node.RecordAudit(r.Context(), "api.detail-read", fields); err != nil {
			s.fail(w, r, err)
			return
		}
		if json.Valid(d) {
			res.Detail = json.RawMessage(d)
		} else {
			res.DetailBase64 = base64.StdEncoding.EncodeToString(d)
		}
	}
	writeJSON(w, 200, res)
}
