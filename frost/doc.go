// Package frost implements FROST threshold Schnorr signatures (RFC 9591).
package frost
