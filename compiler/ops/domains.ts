/**
 * Domain of the nodes that fusion passes create (fused GELU, attention, LayerNorm below opset 17).
 * The frontend refuses it in model files, so these ops only ever see graphs the passes built.
 */
export const FUSED_DOMAIN = 'flashmem.fused';
