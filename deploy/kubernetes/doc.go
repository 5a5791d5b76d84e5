// Package kubernetes holds Larder's Kubernetes manifests for a fleet of
// BuildKit builders (see README.md) and, in its tests, their checks: they
// decode every manifest with Kubernetes' own API types, strictly, and check
// that the Service, the StatefulSets, the Secrets create-certs.sh makes and
// the README fit together. It is a module of its own, so that the library's
// users do not inherit Kubernetes' modules; it has no code to import.
package kubernetes
