// Package access is the domain of accessbot: roles and the policy that
// governs them, access requests and their lifecycle, audit events, and the
// small interfaces (ports) the workflow needs from the outside world.
//
// It imports the standard library only; chat transports, identity
// providers and stores are adapters that implement the interfaces declared
// here.
//
// The workflow (Service) is one file per lifecycle step:
//
//	service.go     Service, Options, Deps, NewService; shared reads
//	submit.go      Submit: validation, duplicate and limit checks, approvers
//	decide.go      Decide, Cancel
//	deny.go        a deny reason given after the denial
//	provision.go   the Grant call, its retries and failure
//	revoke.go      Process, expiry, Revoke: removal until it is confirmed
//	work.go        what provision and revoke share (lease, load, check; retry bookkeeping)
//	lease.go       leases on a request's work and on a membership
//	extend.go      Extend and applying an extension
//	breakglass.go  BreakGlass, Acknowledge
//	rotation.go    SyncRotation: shift grants of on-call rotations
//	reconcile.go   drift between group members and grants
//	outbox.go      delivery of what people must be told
//	limits.go      per-user command limits
//
// Events told to people (Ev*) are in events.go, audit actions (Act*) in
// audit.go, errors and refusals (*Refusal, worded by handlers) in
// errors.go, the ports (Store and its parts, Provisioner, OnCall,
// Notifier, ...) in ports.go, fence.go and inbox.go.
package access
