package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/btcsuite/btcd/wire"

	"github.com/keyquorum/keyquorum/wallet"
)

// What a signing command prints of what it signed. The summary is the one
// every site computes from the transaction alone before it signs
// (wallet.Summary, the same the signing policy and the approvers see); the
// client prints the initiating site's, as text without --json and as the
// "summary" object with it.

// summaryHeading introduces the summary in human output.
const summaryHeading = "summary (computed by this site from the transaction itself; every signer computed and checked its own):"

// printSummary prints a wallet.Summary in its JSON form for a person,
// indented under summaryHeading. A summary this client cannot read (a
// site of a newer version) is printed as indented JSON.
func printSummary(w io.Writer, raw json.RawMessage) error {
	text := ""
	var s wallet.Summary
	if err := json.Unmarshal(raw, &s); err == nil {
		text = s.Text()
	} else {
		var b bytes.Buffer
		if err := json.Indent(&b, raw, "", "  "); err != nil {
			return fmt.Errorf("the site's summary of what it signed is not JSON: %w", err)
		}
		text = b.String()
	}
	_, err := fmt.Fprintf(w, "%s\n  %s\n", summaryHeading, strings.ReplaceAll(strings.TrimRight(text, "\n"), "\n", "\n  "))
	return err
}

// feeRate returns the virtual size of a signed transaction (BIP 141:
// weight = 3 × stripped size + total size, vsize = ⌈weight / 4⌉) and its
// fee per virtual byte rounded to two decimals, or zeros when the summary
// does not know the fee (an input amount is missing).
func feeRate(tx *wire.MsgTx, s *wallet.Summary) (vsize int64, satPerVB float64) {
	if tx == nil || s == nil || s.Bitcoin == nil || s.Bitcoin.Fee == nil {
		return 0, 0
	}
	weight := int64(3*tx.SerializeSizeStripped() + tx.SerializeSize())
	vsize = (weight + 3) / 4
	return vsize, math.Round(float64(*s.Bitcoin.Fee)/float64(vsize)*100) / 100
}
