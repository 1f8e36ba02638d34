"""Deployment of a trained fixed subnet: BN folding, MKLDNN fusion and int8 quantization,
evaluation of the deployed variants, and inference.

Typical use (or ``scripts/quantize_int8.sh`` / ``python -m oneshot_nas.cli.quantize``)::

    net = build_subnet("OneShot-S+", params_file="OneShot-S+-final.params", input_size=32)
    graph = net_to_graph(net)                              # (symbol, arg_params, aux_params)
    folded = fold_batchnorm(*graph)                        # BN-free float32 graph
    calib, _ = calibration_iter(train_loader, num_batches=10)
    int8 = quantize_graph(*graph, calib_mode="naive", calib_data=calib)
    save_graph("out/OneShot-S+-quantized-naive", *int8)
    export_onnx(*graph, "out/OneShot-S+.onnx")             # needs the onnx extra
"""
from .errors import DeployError
from .loading import (SUPERNET_MODELS, build_subnet, graph_block, infer_classes, load_graph,
                      net_to_graph, save_graph, split_params)
from .folding import count_ops, fold_batchnorm, fold_net
from .quantize import (CALIB_MODES, FLOAT_OPS, QUANTIZED_DTYPES, calibration_iter,
                       first_conv_name, fix_zero_variance, fuse_graph, quantize_graph,
                       quantized_prefix)
from .evaluate import (VARIANTS, VariantResult, accuracy, evaluate_variants, float16_block,
                       float16_support, measure_latency, measure_throughput, results_json,
                       results_table)
from .onnx_export import (DEFAULT_OPSET, ONNX_OPSETS, OnnxPredictor, compare_with_mxnet,
                          export_onnx, onnx_session)
from .predict import (DeployMeta, collect_images, meta_for_data, meta_path, predict_topk,
                      preprocess, read_meta, write_meta)

__all__ = ["DeployError", "SUPERNET_MODELS", "build_subnet", "graph_block", "infer_classes",
           "load_graph", "net_to_graph", "save_graph", "split_params", "count_ops",
           "fold_batchnorm", "fold_net", "CALIB_MODES", "FLOAT_OPS", "QUANTIZED_DTYPES",
           "calibration_iter", "first_conv_name", "fix_zero_variance", "fuse_graph",
           "quantize_graph", "quantized_prefix", "VARIANTS", "VariantResult", "accuracy",
           "evaluate_variants", "float16_block", "float16_support", "measure_latency",
           "measure_throughput", "results_json", "results_table", "DeployMeta",
           "meta_for_data", "collect_images", "meta_path", "predict_topk", "preprocess",
           "read_meta", "write_meta", "DEFAULT_OPSET", "ONNX_OPSETS", "OnnxPredictor",
           "compare_with_mxnet", "export_onnx", "onnx_session"]
