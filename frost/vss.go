package frost

// evalPolynomial evaluates the polynomial with coefficients coeffs (constant
// term first) at x with Horner's rule (RFC 9591 Appendix C.1,
// polynomial_evaluate).
func evalPolynomial(g group, coeffs []scalar, x scalar) scalar {
	v := g.newScalar()
	for i := len(coeffs) - 1; i >= 0; i-- {
		v.mul(v, x)
		v.add(v, coeffs[i])
	}
	return v
}
