package client

import (
	"context"
	"crypto/tls"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/veil-ai/veil/oip"
	pb "github.com/veil-ai/veil/oip/inferencepb"
)

// grpcTransport speaks OIP gRPC over one shared connection.
type grpcTransport struct {
	conn *grpc.ClientConn
	stub pb.GRPCInferenceServiceClient
	raw  bool
}

func newGRPCTransport(target string, secure bool, cfg Config, traffic *trafficCounter) (*grpcTransport, error) {
	creds := insecure.NewCredentials()
	if secure {
		tc := cfg.TLS
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(int(cfg.MaxResponseBytes))),
		grpc.WithStatsHandler(grpcTraffic{traffic}),
	)
	if err != nil {
		return nil, fmt.Errorf("oip client: gRPC %s: %w", target, err)
	}
	return &grpcTransport{conn: conn, stub: pb.NewGRPCInferenceServiceClient(conn), raw: cfg.Protocol == GRPCRaw}, nil
}

func (t *grpcTransport) infer(ctx context.Context, model, version string, req *oip.InferRequest) (*oip.InferResponse, error) {
	m, err := oip.ToModelInferRequest(req, model, version, t.raw)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	resp, err := t.stub.ModelInfer(ctx, m)
	if err != nil {
		return nil, err
	}
	out, err := oip.FromModelInferResponse(resp)
	if err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	return out, nil
}

func (t *grpcTransport) serverLive(ctx context.Context) (bool, error) {
	r, err := t.stub.ServerLive(ctx, &pb.ServerLiveRequest{})
	if err != nil {
		return false, err
	}
	return r.GetLive(), nil
}

func (t *grpcTransport) serverReady(ctx context.Context) (bool, error) {
	r, err := t.stub.ServerReady(ctx, &pb.ServerReadyRequest{})
	if err != nil {
		return false, err
	}
	return r.GetReady(), nil
}

func (t *grpcTransport) modelReady(ctx context.Context, model, version string) (bool, error) {
	r, err := t.stub.ModelReady(ctx, &pb.ModelReadyRequest{Name: model, Version: version})
	if err != nil {
		return false, err
	}
	return r.GetReady(), nil
}

func (t *grpcTransport) modelMetadata(ctx context.Context, model, version string) (*oip.ModelMetadata, error) {
	r, err := t.stub.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: model, Version: version})
	if err != nil {
		return nil, err
	}
	md := &oip.ModelMetadata{Name: r.GetName(), Versions: r.GetVersions(), Platform: r.GetPlatform()}
	for _, in := range r.GetInputs() {
		md.Inputs = append(md.Inputs, oip.TensorMetadata{Name: in.GetName(), Datatype: in.GetDatatype(), Shape: in.GetShape()})
	}
	for _, out := range r.GetOutputs() {
		md.Outputs = append(md.Outputs, oip.TensorMetadata{Name: out.GetName(), Datatype: out.GetDatatype(), Shape: out.GetShape()})
	}
	return md, nil
}

func (t *grpcTransport) close() error { return t.conn.Close() }
