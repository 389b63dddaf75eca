package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// operatorsList answers the site's operators (GET /v1/operators, roles
// admin and auditor).
func (s *server) operatorsList(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, operatorsResult{Operators: s.operators.operators()})
}

// operatorsAdd registers an operator or sets its roles (POST
// /v1/operators, role admin).
func (s *server) operatorsAdd(w http.ResponseWriter, r *http.Request) {
	var req operatorAddRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	op, err := s.operators.add(&operator{Name: req.Name, Key: strings.TrimSpace(req.Key), Roles: req.Roles}, operatorOf(r).Name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("operator added", "operator", op.Name, "roles", strings.Join(op.Roles, ","), "key", op.Fingerprint, "by", op.AddedBy)
	writeJSON(w, 200, operatorsResult{Operators: s.operators.operators()})
}

// operatorsRemove takes an operator off the site (POST
// /v1/operators/remove, role admin); its next request is refused.
func (s *server) operatorsRemove(w http.ResponseWriter, r *http.Request) {
	var req operatorRemoveRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.operators.remove(req.Name); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("operator removed", "operator", req.Name, "by", operatorOf(r).Name)
	writeJSON(w, 200, operatorsResult{Operators: s.operators.operators()})
}

func cmdOperators(ctx context.Context, e *env, args []string) error {
	const usage = "kqnode operators add|remove|list --home DIR ... (kqnode operators SUBCOMMAND -h for each)"
	if len(args) == 0 {
		return usageErrorf("operators: a subcommand is required\nusage: %s", usage)
	}
	switch args[0] {
	case "add":
		f := newClientFlags("operators add", "kqnode operators add --home DIR --name NAME --key KEY.pub --roles ROLE,... [--json]")
		name := f.String("name", "", "the operator's name, as logs and the audit log show it (required)")
		key := f.String("key", "", "the operator's SSH public key file (KEY.pub: ssh-ed25519, ecdsa-sha2-nistp256 or a FIDO2 sk- key) (required)")
		roles := f.String("roles", "", "comma-separated roles: requester, approver, admin, auditor (required); for an existing operator, its new roles")
		c, err := f.parse(e, args[1:])
		if err != nil {
			return err
		}
		if *name == "" || *key == "" || *roles == "" {
			return usageErrorf("operators add: --name, --key and --roles are required\nusage: %s", f.synopsis)
		}
		b, err := os.ReadFile(*key)
		if err != nil {
			return usageErrorf("operators add: --key: %v", err)
		}
		var res operatorsResult
		if err := c.call(ctx, pathOperators, operatorAddRequest{Name: *name, Key: string(b), Roles: splitList(*roles)}, &res); err != nil {
			return err
		}
		return printOperators(e, &res)
	case "remove":
		f := newClientFlags("operators remove", "kqnode operators remove --home DIR --name NAME [--json]")
		name := f.String("name", "", "the operator to remove (required)")
		c, err := f.parse(e, args[1:])
		if err != nil {
			return err
		}
		if *name == "" {
			return usageErrorf("operators remove: --name is required\nusage: %s", f.synopsis)
		}
		var res operatorsResult
		if err := c.call(ctx, pathOperatorsRemove, operatorRemoveRequest{Name: *name}, &res); err != nil {
			return err
		}
		return printOperators(e, &res)
	case "list":
		f := newClientFlags("operators list", "kqnode operators list --home DIR [--json]")
		c, err := f.parse(e, args[1:])
		if err != nil {
			return err
		}
		var res operatorsResult
		if err := c.call(ctx, pathOperators, nil, &res); err != nil {
			return err
		}
		return printOperators(e, &res)
	}
	return usageErrorf("operators: unknown subcommand %q\nusage: %s", args[0], usage)
}

func printOperators(e *env, res *operatorsResult) error {
	if e.json {
		return printJSON(e.stdout, res)
	}
	for _, o := range res.Operators {
		fmt.Fprintf(e.stdout, "%-16s %-32s %s  added %s by %s\n", o.Name, strings.Join(o.Roles, ","), o.Fingerprint,
			o.Added.Format("2006-01-02T15:04:05Z"), o.AddedBy)
	}
	return nil
}
