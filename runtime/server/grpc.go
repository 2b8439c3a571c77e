package server

import (
	"context"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/veil-ai/veil/oip"
	pb "github.com/veil-ai/veil/oip/inferencepb"
)

// newGRPCServer builds the gRPC server used on the gRPC port and, through
// ServeHTTP, on the HTTP port.
func (s *Server) newGRPCServer() *grpc.Server {
	max := int(s.cfg.MaxRequestBytes)
	g := grpc.NewServer(
		grpc.MaxRecvMsgSize(max),
		grpc.MaxSendMsgSize(max),
		grpc.ChainUnaryInterceptor(s.grpcInterceptor),
	)
	pb.RegisterGRPCInferenceServiceServer(g, &grpcService{s: s})
	// The standard gRPC health service, for Kubernetes gRPC probes: the
	// server ("") and the model name report SERVING once the model is loaded.
	healthpb.RegisterHealthServer(g, s.health)
	return g
}

// grpcInterceptor is the gRPC counterpart of instrument: request id,
// metrics, logging and panic recovery.
func (s *Server) grpcInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	var given string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(requestIDHeader); len(v) > 0 {
			given = v[0]
		}
	}
	id := newRequestID(given)
	ctx = withRequestID(ctx, id)
	_ = grpc.SetHeader(ctx, metadata.Pairs(requestIDHeader, id))
	g := s.metrics.inFlight.WithLabelValues("grpc")
	g.Inc()
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in gRPC handler", "request_id", id, "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
			resp, err = nil, status.Error(codes.Internal, "internal server error")
		}
		g.Dec()
		code := status.Code(err)
		s.metrics.requests.WithLabelValues("grpc", code.String()).Inc()
		if code != codes.OK {
			s.metrics.errors.WithLabelValues("grpc", code.String()).Inc()
		}
		s.log.Debug("request", "request_id", id, "method", info.FullMethod, "code", code.String(), "seconds", time.Since(start).Seconds())
	}()
	return handler(ctx, req)
}

// grpcService implements inference.GRPCInferenceService.
var _ pb.GRPCInferenceServiceServer = (*grpcService)(nil)

type grpcService struct {
	pb.UnimplementedGRPCInferenceServiceServer
	s *Server
}

// grpcError maps err to a status and logs it as REST does.
func (g *grpcService) grpcError(ctx context.Context, err error) error {
	httpStatus, code := classify(err)
	g.s.logFailure(ctx, "grpc", httpStatus, err)
	return status.Error(code, err.Error())
}

func (g *grpcService) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: true}, nil
}

func (g *grpcService) ServerReady(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: g.s.ready()}, nil
}

func (g *grpcService) ModelReady(ctx context.Context, req *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	_, err := g.s.lookup(req.GetName(), req.GetVersion())
	switch _, code := classify(err); {
	case err == nil:
		return &pb.ModelReadyResponse{Ready: true}, nil
	case code == codes.Unavailable:
		return &pb.ModelReadyResponse{Ready: false}, nil
	}
	return nil, g.grpcError(ctx, err)
}

func (g *grpcService) ServerMetadata(context.Context, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	m := g.s.serverMetadata()
	return &pb.ServerMetadataResponse{Name: m.Name, Version: m.Version, Extensions: m.Extensions}, nil
}

func (g *grpcService) ModelMetadata(ctx context.Context, req *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	sv, err := g.s.lookup(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, g.grpcError(ctx, err)
	}
	m := g.s.metadata(sv)
	return &pb.ModelMetadataResponse{Name: m.Name, Versions: m.Versions, Platform: m.Platform,
		Inputs: pbTensorMetadata(m.Inputs), Outputs: pbTensorMetadata(m.Outputs)}, nil
}

func pbTensorMetadata(ts []oip.TensorMetadata) []*pb.ModelMetadataResponse_TensorMetadata {
	out := make([]*pb.ModelMetadataResponse_TensorMetadata, len(ts))
	for i, t := range ts {
		out[i] = &pb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape}
	}
	return out
}

// ModelInfer answers raw when the request was raw.
func (g *grpcService) ModelInfer(ctx context.Context, m *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	if _, err := g.s.lookup(m.GetModelName(), m.GetModelVersion()); err != nil {
		return nil, g.grpcError(ctx, err)
	}
	req, err := oip.FromModelInferRequest(m)
	if err != nil {
		return nil, g.grpcError(ctx, err)
	}
	resp, err := g.s.infer(ctx, m.GetModelName(), m.GetModelVersion(), req)
	if err != nil {
		return nil, g.grpcError(ctx, err)
	}
	out, err := oip.ToModelInferResponse(resp, len(m.GetRawInputContents()) > 0)
	if err != nil {
		return nil, g.grpcError(ctx, err)
	}
	return out, nil
}

func newHealth(modelName string) *health.Server {
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	h.SetServingStatus(modelName, healthpb.HealthCheckResponse_NOT_SERVING)
	return h
}

func (s *Server) setServing(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(s.cfg.ModelName, st)
}
