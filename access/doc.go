// Package access is the domain of accessbot: roles and the policy that
// governs them, access requests and their lifecycle, audit events, and the
// small interfaces (ports) the workflow needs from the outside world.
//
// It imports the standard library only (and a YAML decoder for durations);
// chat transports, identity providers and stores are adapters that implement
// the interfaces declared here.
package access
