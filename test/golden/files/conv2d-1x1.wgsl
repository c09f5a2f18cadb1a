// kernel 0: conv2d_1x1 workgroups [1,1,1]
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// conv (rows): 8 output channels x 7 output pixels per invocation
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tile = wid.x * 8u + lid.x;
  if (tile >= 7u) { return; }
  let block = wid.y;
  let n = wid.z;
  let group = block / 1u;
  let ocInGroup = (block % 1u) * 8u;
  let ocBase = group * 8u + ocInGroup;
  let xBase = (n * 16u + group * 16u) * 49u;
  let yBase = (n * 8u + ocBase) * 49u;
  let wBlock = block * 32u;
  var acc_0_0 = vec4<f32>(0.0);
  var acc_0_1 = vec4<f32>(0.0);
  var acc_1_0 = vec4<f32>(0.0);
  var acc_1_1 = vec4<f32>(0.0);
  var acc_2_0 = vec4<f32>(0.0);
  var acc_2_1 = vec4<f32>(0.0);
  var acc_3_0 = vec4<f32>(0.0);
  var acc_3_1 = vec4<f32>(0.0);
  var acc_4_0 = vec4<f32>(0.0);
  var acc_4_1 = vec4<f32>(0.0);
  var acc_5_0 = vec4<f32>(0.0);
  var acc_5_1 = vec4<f32>(0.0);
  var acc_6_0 = vec4<f32>(0.0);
  var acc_6_1 = vec4<f32>(0.0);
  let owb = tile % 1u;
  let rowIndex = tile / 1u;
  let oh = rowIndex % 7u;
  let od = rowIndex / 7u;
  let ow0 = owb * 7u;
  let c0 = i32(ow0) * 1 - 0;
  let col_0 = c0 + 0;
  let colOff_0 = u32(col_0);
  let col_1 = c0 + 1;
  let colOff_1 = u32(col_1);
  let col_2 = c0 + 2;
  let colOff_2 = u32(col_2);
  let col_3 = c0 + 3;
  let colOff_3 = u32(col_3);
  let col_4 = c0 + 4;
  let colOff_4 = u32(col_4);
  let col_5 = c0 + 5;
  let colOff_5 = u32(col_5);
  let col_6 = c0 + 6;
  let colOff_6 = u32(col_6);
  for (var kd = 0i; kd < 1; kd++) {
    let id = i32(od) * 1 + kd * 1 - 0;
    for (var kh = 0i; kh < 1; kh++) {
      let ih = i32(oh) * 1 + kh * 1 - 0;
      if (true && true) {
        var xi = xBase + u32(id * 7 + ih) * 7u;
        var wi = wBlock + u32(kd * 1 + kh) * 32u;
        for (var ic = 0u; ic < 16u; ic++) {
          let x_0 = x[xi + colOff_0];
          let x_1 = x[xi + colOff_1];
          let x_2 = x[xi + colOff_2];
          let x_3 = x[xi + colOff_3];
          let x_4 = x[xi + colOff_4];
          let x_5 = x[xi + colOff_5];
          let x_6 = x[xi + colOff_6];
          let w0_0 = w[wi + 0u];
          let w0_1 = w[wi + 1u];
          acc_0_0 += w0_0 * x_0;
          acc_0_1 += w0_1 * x_0;
          acc_1_0 += w0_0 * x_1;
          acc_1_1 += w0_1 * x_1;
          acc_2_0 += w0_0 * x_2;
          acc_2_1 += w0_1 * x_2;
          acc_3_0 += w0_0 * x_3;
          acc_3_1 += w0_1 * x_3;
          acc_4_0 += w0_0 * x_4;
          acc_4_1 += w0_1 * x_4;
          acc_5_0 += w0_0 * x_5;
          acc_5_1 += w0_1 * x_5;
          acc_6_0 += w0_0 * x_6;
          acc_6_1 += w0_1 * x_6;
          xi += 49u;
          wi += 2u;
        }
      }
    }
  }
  {
    let plane_0 = (yBase + 0u + (od * 7u + oh) * 7u + ow0);
    y[plane_0 + 0u] = (acc_0_0[0]);
    y[plane_0 + 1u] = (acc_1_0[0]);
    y[plane_0 + 2u] = (acc_2_0[0]);
    y[plane_0 + 3u] = (acc_3_0[0]);
    y[plane_0 + 4u] = (acc_4_0[0]);
    y[plane_0 + 5u] = (acc_5_0[0]);
    y[plane_0 + 6u] = (acc_6_0[0]);
  }
  {
    let plane_1 = (yBase + 49u + (od * 7u + oh) * 7u + ow0);
    y[plane_1 + 0u] = (acc_0_0[1]);
    y[plane_1 + 1u] = (acc_1_0[1]);
    y[plane_1 + 2u] = (acc_2_0[1]);
    y[plane_1 + 3u] = (acc_3_0[1]);
    y[plane_1 + 4u] = (acc_4_0[1]);
    y[plane_1 + 5u] = (acc_5_0[1]);
    y[plane_1 + 6u] = (acc_6_0[1]);
  }
  {
    let plane_2 = (yBase + 98u + (od * 7u + oh) * 7u + ow0);
    y[plane_2 + 0u] = (acc_0_0[2]);
    y[plane_2 + 1u] = (acc_1_0[2]);
    y[plane_2 + 2u] = (acc_2_0[2]);
    y[plane_2 + 3u] = (acc_3_0[2]);
    y[plane_2 + 4u] = (acc_4_0[2]);
    y[plane_2 + 5u] = (acc_5_0[2]);
    y[plane_2 + 6u] = (acc_6_0[2]);
  }
  {
    let plane_3 = (yBase + 147u + (od * 7u + oh) * 7u + ow0);
    y[plane_3 + 0u] = (acc_0_0[3]);
    y[plane_3 + 1u] = (acc_1_0[3]);
    y[plane_3 + 2u] = (acc_2_0[3]);
    y[plane_3 + 3u] = (acc_3_0[3]);
    y[plane_3 + 4u] = (acc_4_0[3]);
    y[plane_3 + 5u] = (acc_5_0[3]);
    y[plane_3 + 6u] = (acc_6_0[3]);
  }
  {
    let plane_4 = (yBase + 196u + (od * 7u + oh) * 7u + ow0);
    y[plane_4 + 0u] = (acc_0_1[0]);
    y[plane_4 + 1u] = (acc_1_1[0]);
    y[plane_4 + 2u] = (acc_2_1[0]);
    y[plane_4 + 3u] = (acc_3_1[0]);
    y[plane_4 + 4u] = (acc_4_1[0]);
    y[plane_4 + 5u] = (acc_5_1[0]);
    y[plane_4 + 6u] = (acc_6_1[0]);
  }
  {
    let plane_5 = (yBase + 245u + (od * 7u + oh) * 7u + ow0);
    y[plane_5 + 0u] = (acc_0_1[1]);
    y[plane_5 + 1u] = (acc_1_1[1]);
    y[plane_5 + 2u] = (acc_2_1[1]);
    y[plane_5 + 3u] = (acc_3_1[1]);
    y[plane_5 + 4u] = (acc_4_1[1]);
    y[plane_5 + 5u] = (acc_5_1[1]);
    y[plane_5 + 6u] = (acc_6_1[1]);
  }
  {
    let plane_6 = (yBase + 294u + (od * 7u + oh) * 7u + ow0);
    y[plane_6 + 0u] = (acc_0_1[2]);
    y[plane_6 + 1u] = (acc_1_1[2]);
    y[plane_6 + 2u] = (acc_2_1[2]);
    y[plane_6 + 3u] = (acc_3_1[2]);
    y[plane_6 + 4u] = (acc_4_1[2]);
    y[plane_6 + 5u] = (acc_5_1[2]);
    y[plane_6 + 6u] = (acc_6_1[2]);
  }
  {
    let plane_7 = (yBase + 343u + (od * 7u + oh) * 7u + ow0);
    y[plane_7 + 0u] = (acc_0_1[3]);
    y[plane_7 + 1u] = (acc_1_1[3]);
    y[plane_7 + 2u] = (acc_2_1[3]);
    y[plane_7 + 3u] = (acc_3_1[3]);
    y[plane_7 + 4u] = (acc_4_1[3]);
    y[plane_7 + 5u] = (acc_5_1[3]);
    y[plane_7 + 6u] = (acc_6_1[3]);
  }
}
