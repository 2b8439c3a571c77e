package oip

import pb "github.com/veil-ai/veil/oip/inferencepb"

type (
	inferReqPB = pb.ModelInferRequest
	contentsPB = pb.InferTensorContents
)
