package client

import (
	"context"
	"sync/atomic"

	"google.golang.org/grpc/stats"
)

// Traffic is what a client has moved so far: REST request and response
// bodies, or gRPC messages as framed on the wire. Sent is the direction
// into the runtime, Received the (expensive) egress out of it.
type Traffic struct {
	Sent     int64
	Received int64
}

type trafficCounter struct{ sent, received atomic.Int64 }

func (t *trafficCounter) snapshot() Traffic {
	return Traffic{Sent: t.sent.Load(), Received: t.received.Load()}
}

// Traffic reports the bytes this client has sent and received.
func (c *Client) Traffic() Traffic { return c.traffic.snapshot() }

// grpcTraffic counts message bytes through gRPC's stats hooks.
type grpcTraffic struct{ c *trafficCounter }

func (g grpcTraffic) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (g grpcTraffic) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (g grpcTraffic) HandleConn(context.Context, stats.ConnStats)                       {}
func (g grpcTraffic) HandleRPC(_ context.Context, s stats.RPCStats) {
	switch p := s.(type) {
	case *stats.OutPayload:
		g.c.sent.Add(int64(p.WireLength))
	case *stats.InPayload:
		g.c.received.Add(int64(p.WireLength))
	}
}
