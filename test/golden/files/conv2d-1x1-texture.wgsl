// kernel 0: conv2d_1x1_tex workgroups [1,2,1]
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var w: texture_2d_array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// conv (texture 4x8x1): 4 output channels x 4 output pixels per invocation
@compute @workgroup_size(16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tile = wid.x * 16u + lid.x;
  if (tile >= 13u) { return; }
  let group = wid.y / 2u;
  let ocInGroup = (wid.y % 2u) * 4u;
  let ocBase = group * 8u + ocInGroup;
  let n = wid.z;
  let xBase = (n * 16u + group * 16u) * 49u;
  let pix0 = tile * 4u;
  let p_0 = min(pix0 + 0u, 48u);
  let o0_0 = i32(p_0 / 49u) * 1 - 0;
  let o1_0 = i32((p_0 / 7u) % 7u) * 1 - 0;
  let o2_0 = i32(p_0 % 7u) * 1 - 0;
  let p_1 = min(pix0 + 1u, 48u);
  let o0_1 = i32(p_1 / 49u) * 1 - 0;
  let o1_1 = i32((p_1 / 7u) % 7u) * 1 - 0;
  let o2_1 = i32(p_1 % 7u) * 1 - 0;
  let p_2 = min(pix0 + 2u, 48u);
  let o0_2 = i32(p_2 / 49u) * 1 - 0;
  let o1_2 = i32((p_2 / 7u) % 7u) * 1 - 0;
  let o2_2 = i32(p_2 % 7u) * 1 - 0;
  let p_3 = min(pix0 + 3u, 48u);
  let o0_3 = i32(p_3 / 49u) * 1 - 0;
  let o1_3 = i32((p_3 / 7u) % 7u) * 1 - 0;
  let o2_3 = i32(p_3 % 7u) * 1 - 0;
  let row_0 = group * 8u + min(ocInGroup + 0u, 7u);
  let row_1 = group * 8u + min(ocInGroup + 1u, 7u);
  let row_2 = group * 8u + min(ocInGroup + 2u, 7u);
  let row_3 = group * 8u + min(ocInGroup + 3u, 7u);
  var acc_0 = vec4<f32>(0.0);
  var acc_1 = vec4<f32>(0.0);
  var acc_2 = vec4<f32>(0.0);
  var acc_3 = vec4<f32>(0.0);
  for (var t = 0u; t < 4u; t++) {
    let wv_0 = textureLoad(w, vec2<u32>(t, row_0), 0u, 0u);
    let wv_1 = textureLoad(w, vec2<u32>(t, row_1), 0u, 0u);
    let wv_2 = textureLoad(w, vec2<u32>(t, row_2), 0u, 0u);
    let wv_3 = textureLoad(w, vec2<u32>(t, row_3), 0u, 0u);
    let r_0 = t * 4u + 0u;
    let ic_0 = r_0;
    let c_0 = xBase + min(ic_0, 15u) * 49u;
    let d_0_0 = o0_0;
    let h_0_0 = o1_0;
    let w_0_0 = o2_0;
    let x_0_0 = x[c_0 + u32((d_0_0 * 7 + h_0_0) * 7 + w_0_0)];
    let d_1_0 = o0_1;
    let h_1_0 = o1_1;
    let w_1_0 = o2_1;
    let x_1_0 = x[c_0 + u32((d_1_0 * 7 + h_1_0) * 7 + w_1_0)];
    let d_2_0 = o0_2;
    let h_2_0 = o1_2;
    let w_2_0 = o2_2;
    let x_2_0 = x[c_0 + u32((d_2_0 * 7 + h_2_0) * 7 + w_2_0)];
    let d_3_0 = o0_3;
    let h_3_0 = o1_3;
    let w_3_0 = o2_3;
    let x_3_0 = x[c_0 + u32((d_3_0 * 7 + h_3_0) * 7 + w_3_0)];
    let r_1 = t * 4u + 1u;
    let ic_1 = r_1;
    let c_1 = xBase + min(ic_1, 15u) * 49u;
    let d_0_1 = o0_0;
    let h_0_1 = o1_0;
    let w_0_1 = o2_0;
    let x_0_1 = x[c_1 + u32((d_0_1 * 7 + h_0_1) * 7 + w_0_1)];
    let d_1_1 = o0_1;
    let h_1_1 = o1_1;
    let w_1_1 = o2_1;
    let x_1_1 = x[c_1 + u32((d_1_1 * 7 + h_1_1) * 7 + w_1_1)];
    let d_2_1 = o0_2;
    let h_2_1 = o1_2;
    let w_2_1 = o2_2;
    let x_2_1 = x[c_1 + u32((d_2_1 * 7 + h_2_1) * 7 + w_2_1)];
    let d_3_1 = o0_3;
    let h_3_1 = o1_3;
    let w_3_1 = o2_3;
    let x_3_1 = x[c_1 + u32((d_3_1 * 7 + h_3_1) * 7 + w_3_1)];
    let r_2 = t * 4u + 2u;
    let ic_2 = r_2;
    let c_2 = xBase + min(ic_2, 15u) * 49u;
    let d_0_2 = o0_0;
    let h_0_2 = o1_0;
    let w_0_2 = o2_0;
    let x_0_2 = x[c_2 + u32((d_0_2 * 7 + h_0_2) * 7 + w_0_2)];
    let d_1_2 = o0_1;
    let h_1_2 = o1_1;
    let w_1_2 = o2_1;
    let x_1_2 = x[c_2 + u32((d_1_2 * 7 + h_1_2) * 7 + w_1_2)];
    let d_2_2 = o0_2;
    let h_2_2 = o1_2;
    let w_2_2 = o2_2;
    let x_2_2 = x[c_2 + u32((d_2_2 * 7 + h_2_2) * 7 + w_2_2)];
    let d_3_2 = o0_3;
    let h_3_2 = o1_3;
    let w_3_2 = o2_3;
    let x_3_2 = x[c_2 + u32((d_3_2 * 7 + h_3_2) * 7 + w_3_2)];
    let r_3 = t * 4u + 3u;
    let ic_3 = r_3;
    let c_3 = xBase + min(ic_3, 15u) * 49u;
    let d_0_3 = o0_0;
    let h_0_3 = o1_0;
    let w_0_3 = o2_0;
    let x_0_3 = x[c_3 + u32((d_0_3 * 7 + h_0_3) * 7 + w_0_3)];
    let d_1_3 = o0_1;
    let h_1_3 = o1_1;
    let w_1_3 = o2_1;
    let x_1_3 = x[c_3 + u32((d_1_3 * 7 + h_1_3) * 7 + w_1_3)];
    let d_2_3 = o0_2;
    let h_2_3 = o1_2;
    let w_2_3 = o2_2;
    let x_2_3 = x[c_3 + u32((d_2_3 * 7 + h_2_3) * 7 + w_2_3)];
    let d_3_3 = o0_3;
    let h_3_3 = o1_3;
    let w_3_3 = o2_3;
    let x_3_3 = x[c_3 + u32((d_3_3 * 7 + h_3_3) * 7 + w_3_3)];
    let xv_0 = vec4<f32>(x_0_0, x_0_1, x_0_2, x_0_3);
    acc_0 += vec4<f32>(dot(wv_0, xv_0), dot(wv_1, xv_0), dot(wv_2, xv_0), dot(wv_3, xv_0));
    let xv_1 = vec4<f32>(x_1_0, x_1_1, x_1_2, x_1_3);
    acc_1 += vec4<f32>(dot(wv_0, xv_1), dot(wv_1, xv_1), dot(wv_2, xv_1), dot(wv_3, xv_1));
    let xv_2 = vec4<f32>(x_2_0, x_2_1, x_2_2, x_2_3);
    acc_2 += vec4<f32>(dot(wv_0, xv_2), dot(wv_1, xv_2), dot(wv_2, xv_2), dot(wv_3, xv_2));
    let xv_3 = vec4<f32>(x_3_0, x_3_1, x_3_2, x_3_3);
    acc_3 += vec4<f32>(dot(wv_0, xv_3), dot(wv_1, xv_3), dot(wv_2, xv_3), dot(wv_3, xv_3));
  }
  {
    let plane = (n * 8u + ocBase + 0u) * 49u + pix0;
    if (pix0 + 0u < 49u) { y[plane + 0u] = (acc_0[0]); }
    if (pix0 + 1u < 49u) { y[plane + 1u] = (acc_1[0]); }
    if (pix0 + 2u < 49u) { y[plane + 2u] = (acc_2[0]); }
    if (pix0 + 3u < 49u) { y[plane + 3u] = (acc_3[0]); }
  }
  {
    let plane = (n * 8u + ocBase + 1u) * 49u + pix0;
    if (pix0 + 0u < 49u) { y[plane + 0u] = (acc_0[1]); }
    if (pix0 + 1u < 49u) { y[plane + 1u] = (acc_1[1]); }
    if (pix0 + 2u < 49u) { y[plane + 2u] = (acc_2[1]); }
    if (pix0 + 3u < 49u) { y[plane + 3u] = (acc_3[1]); }
  }
  {
    let plane = (n * 8u + ocBase + 2u) * 49u + pix0;
    if (pix0 + 0u < 49u) { y[plane + 0u] = (acc_0[2]); }
    if (pix0 + 1u < 49u) { y[plane + 1u] = (acc_1[2]); }
    if (pix0 + 2u < 49u) { y[plane + 2u] = (acc_2[2]); }
    if (pix0 + 3u < 49u) { y[plane + 3u] = (acc_3[2]); }
  }
  {
    let plane = (n * 8u + ocBase + 3u) * 49u + pix0;
    if (pix0 + 0u < 49u) { y[plane + 0u] = (acc_0[3]); }
    if (pix0 + 1u < 49u) { y[plane + 1u] = (acc_1[3]); }
    if (pix0 + 2u < 49u) { y[plane + 2u] = (acc_2[3]); }
    if (pix0 + 3u < 49u) { y[plane + 3u] = (acc_3[3]); }
  }
}
